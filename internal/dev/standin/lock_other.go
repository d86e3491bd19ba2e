//go:build !unix

package standin

import "os"

// lockLog does nothing where flock is unavailable; do not point two servers
// at one data directory there.
func lockLog(*os.File) error { return nil }
