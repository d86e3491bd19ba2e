package admin

import (
	"context"
	"time"

	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

// ParkingLot keeps the events the projector could not apply.
type ParkingLot interface {
	projection.Parker
	// ListParked returns at most limit (<= 0: all) parked events in log
	// order with keys after after, only userID's unless it is empty.
	ListParked(ctx context.Context, userID, after string, limit int) ([]projection.ParkedEvent, error)
	// DeleteParked removes parked events that have been applied.
	DeleteParked(ctx context.Context, keys ...string) error
	// ReplayFailed counts a failed replay of a parked event.
	ReplayFailed(ctx context.Context, key, cause string) error
}

// EventLog is the event store as the operations read it: the head of the
// log (the target of a replay) and a user's stream (the judge when a live
// document and a replay disagree).
type EventLog interface {
	HeadPosition(ctx context.Context) (eventlog.Position, error)
	ReadStream(ctx context.Context, userID string, from int64, count int) ([]eventlog.Event, error)
}

// Retirements records the carts collections a rebuild replaced until they
// are dropped, so that a stop within the drop delay leaves the drop to the
// next start instead of leaving the collection behind for good.
type Retirements interface {
	// Retire records that carts may be dropped after t.
	Retire(ctx context.Context, carts string, t time.Time) error
	// Retired returns every recorded collection and its drop time.
	Retired(ctx context.Context) (map[string]time.Time, error)
	// Forget removes a dropped collection's record.
	Forget(ctx context.Context, carts string) error
}
