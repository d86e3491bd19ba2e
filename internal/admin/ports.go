package admin

import (
	"context"
	"iter"

	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

// CartStore is one carts collection (with the shared checkpoints): what the
// projector writes, what queries read, and what a verification compares.
type CartStore interface {
	projection.Store
	// GetCart returns the user's document; ok is false when there is none.
	GetCart(ctx context.Context, userID string) (doc projection.CartDoc, ok bool, err error)
	// ScanCarts yields every document in user ID order.
	ScanCarts(ctx context.Context) iter.Seq2[projection.CartDoc, error]
	// CountCarts returns how many documents the collection holds.
	CountCarts(ctx context.Context) (int64, error)
}

// Catalog records which carts collection is in use and drops the others.
type Catalog interface {
	// Active returns the name of the collection in use.
	Active(ctx context.Context) (string, error)
	// SetActive records carts as the collection in use.
	SetActive(ctx context.Context, carts string) error
	// Drop removes a collection and its projector's checkpoint.
	Drop(ctx context.Context, carts string) error
}

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
