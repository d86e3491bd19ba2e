package command

import (
	"context"

	"github.com/acme/cart/internal/cart"
)

// EventStore is what command handling needs of the event log: one stream of
// events per user with optimistic concurrency, and one snapshot per user.
// Implementations translate their failures into cart.ErrConcurrencyConflict
// (the stream is not at the expected revision) and cart.ErrUnavailable (the
// store cannot be reached); anything else is unexpected.
type EventStore interface {
	// LoadEvents calls fn with each event of userID's stream from revision
	// from (inclusive) on, in order, stopping at fn's first error, which it
	// returns wrapped. A stream without events is no error.
	LoadEvents(ctx context.Context, userID string, from int64, fn func(revision int64, e cart.Event, m cart.Metadata) error) error
	// AppendEvents appends events, each carrying meta, if the stream's last
	// revision is expected (-1: no events yet), and returns the new last
	// revision. Resending the same batch (same command) at the same
	// expected revision must not write it twice.
	AppendEvents(ctx context.Context, userID string, expected int64, meta cart.Metadata, events []cart.Event) (int64, error)
	// ReadSnapshot returns the latest snapshot written for userID, nil if none.
	ReadSnapshot(ctx context.Context, userID string) ([]byte, error)
	// WriteSnapshot replaces userID's snapshot.
	WriteSnapshot(ctx context.Context, userID string, data []byte) error
}
