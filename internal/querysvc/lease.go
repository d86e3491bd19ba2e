package querysvc

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
)

// ProjectorLease is the name of the lease, per read-model database, whose
// holder runs the live projector.
const ProjectorLease = "projector"

// holderID returns id, or when it is empty an ID unique to this process:
// the hostname and pid say which replica it is in logs and in the lease
// document, and the random part keeps a restarted process (same pid in a
// container) or two in-process services apart.
func holderID(id string) string {
	if id != "" {
		return id
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
