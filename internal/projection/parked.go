package projection

import (
	"fmt"
	"time"

	"github.com/acme/cart/internal/eventlog"
)

// ParkedEvent is an event in the parking lot: what the projector handed to
// its Parker, as stored, with the bookkeeping of later replays. The parking
// lot adapter returns it and the admin operations list and replay it.
type ParkedEvent struct {
	// Key identifies the parked event and orders the parking lot in log
	// order (it is derived from Event.Position); page tokens carry it.
	Key   string
	Event eventlog.Event
	// Error is why the projector could not apply the event.
	Error string
	// ParkedAt is when it was first parked.
	ParkedAt time.Time
	// ReplayAttempts counts replays that failed.
	ReplayAttempts int
	// LastReplayError is why the last failed replay failed; empty if none.
	LastReplayError string
}

// ParkingKey is the key a parking lot stores an event under: its position
// in $all, zero-padded so that keys sort in log order as strings. An event
// keeps its position for ever, so parking it again (after a restart or in
// a rebuild) finds the same key.
func ParkingKey(pos eventlog.Position) string {
	return fmt.Sprintf("%020d/%020d", pos.Commit, pos.Prepare)
}
