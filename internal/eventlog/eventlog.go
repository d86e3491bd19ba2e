// Package eventlog is the one vocabulary of the event log that the read side
// and the queries consume: where an event sits in $all (Position), a
// recorded event with its stream, revision, type, data, metadata and time
// (Event), and what a catch-up subscription delivers (Message,
// Subscription).
//
// The EventStoreDB adapter (package eventstore) produces these types
// directly, and the projector, the queries and the read-model operations
// consume them, so no layer copies an event into a look-alike type and no
// package but the adapter imports the EventStoreDB client. The types carry
// raw JSON: deciding what an undecodable (poison) event means is the
// consumer's business, not the log's.
package eventlog

import (
	"context"
	"fmt"
	"time"
)

// Position is a point in $all. Positions only grow, so a stored position
// (a checkpoint) says how far a consumer has come, and comparing one with
// the head of the log says how far it still has to go.
type Position struct {
	Commit, Prepare uint64
}

// Less orders positions the way the event store does (commit, then
// prepare), so that callers compare without knowing the pair's rules.
func (p Position) Less(q Position) bool {
	if p.Commit != q.Commit {
		return p.Commit < q.Commit
	}
	return p.Prepare < q.Prepare
}

// String renders the position as EventStoreDB's UI does, C:<commit>/P:<prepare>,
// so that logs and the store's own tools speak of the same point.
func (p Position) String() string { return fmt.Sprintf("C:%d/P:%d", p.Commit, p.Prepare) }

// Event is one recorded cart event: raw JSON plus where it sits in its
// stream (Revision: the cart's version once applied) and in the global log
// (Position: for checkpoints).
type Event struct {
	StreamID string
	// UserID is the stream's user: StreamID without the cart stream prefix.
	UserID string
	// Revision is the event's 0-based number in its stream.
	Revision int64
	Position Position
	EventID  string
	Type     string
	Data     []byte
	Metadata []byte
	// Created is when the store recorded the event.
	Created time.Time
}

// Message is one item of a subscription: exactly one of Event and
// Checkpoint is set, or CaughtUp is true.
type Message struct {
	// Event is a cart event, in $all order.
	Event *Event
	// Checkpoint is a position the server has considered up to while its
	// filter skipped other events; storing it keeps a restart from
	// rescanning them.
	Checkpoint *Position
	// CaughtUp says every event that existed when the subscription started
	// has been delivered; live events follow.
	CaughtUp bool
}

// Subscription is a running catch-up subscription to the cart events of
// $all. One goroutine calls Next.
type Subscription interface {
	// Next blocks for the next message. An error means the subscription
	// has dropped (or ctx ended); the consumer subscribes again from its
	// checkpoint, so that it decides the backoff.
	Next(ctx context.Context) (Message, error)
	// Close ends the subscription and makes a pending Next return.
	Close() error
}
