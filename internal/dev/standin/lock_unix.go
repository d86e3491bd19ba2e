//go:build unix

package standin

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockLog takes an exclusive, non-blocking lock on the open event log, so a
// second server (or a test and the local stack) cannot interleave writes in
// the same data directory. The lock goes away with the file descriptor.
func lockLog(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%s is in use by another stand-in server", f.Name())
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}
