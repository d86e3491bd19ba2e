package commandtest

import (
	"context"
	"fmt"
	"sync"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
)

// Spy wraps any command.EventStore, counts what the handler asks of it and
// injects the failures that are hard to provoke in a real store.
type Spy struct {
	Store command.EventStore

	mu             sync.Mutex
	eventsRead     int
	loads          int
	appends        int
	snapshotReads  int
	snapshotWrites int
	loseResponses  int    // successful appends still to report as failed
	snapshotErr    error  // returned by WriteSnapshot instead of writing
	beforeAppend   func() // runs once, before the next append
}

var _ command.EventStore = (*Spy)(nil)

// ErrResponseLost is what an append whose response was "lost" returns: the
// events were written, but the caller cannot know.
var ErrResponseLost = fmt.Errorf("commandtest: append response lost: %w", cart.ErrUnavailable)

// LoseAppendResponses makes the next n appends that succeed return
// ErrResponseLost after the store wrote them.
func (s *Spy) LoseAppendResponses(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseResponses = n
}

// FailSnapshotWrites makes WriteSnapshot fail with err (nil: work again).
func (s *Spy) FailSnapshotWrites(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshotErr = err
}

// BeforeNextAppend runs f once, just before the next append reaches the
// store, e.g. to slip in a concurrent writer's append.
func (s *Spy) BeforeNextAppend(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beforeAppend = f
}

// EventsRead is how many events LoadEvents delivered since the last Reset.
func (s *Spy) EventsRead() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eventsRead
}

// Loads is how many LoadEvents calls reached the store since the last
// Reset, whatever they delivered: a read that finds nothing new still costs
// a round trip.
func (s *Spy) Loads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

// SnapshotReads is how many ReadSnapshot calls reached the store since the
// last Reset.
func (s *Spy) SnapshotReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotReads
}

// Calls is how many calls of any kind reached the store since the last
// Reset: the round trips a command cost.
func (s *Spy) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads + s.appends + s.snapshotReads + s.snapshotWrites
}

// Appends is how many appends reached the store since the last Reset.
func (s *Spy) Appends() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appends
}

// SnapshotWrites is how many snapshots were written since the last Reset.
func (s *Spy) SnapshotWrites() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotWrites
}

// Reset sets the counters to zero.
func (s *Spy) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventsRead, s.loads, s.appends, s.snapshotReads, s.snapshotWrites = 0, 0, 0, 0, 0
}

// LoadEvents implements command.EventStore, counting the events delivered.
func (s *Spy) LoadEvents(ctx context.Context, userID string, from int64, fn func(int64, cart.Event, cart.Metadata) error) error {
	s.mu.Lock()
	s.loads++
	s.mu.Unlock()
	return s.Store.LoadEvents(ctx, userID, from, func(rev int64, e cart.Event, m cart.Metadata) error {
		s.mu.Lock()
		s.eventsRead++
		s.mu.Unlock()
		return fn(rev, e, m)
	})
}

// AppendEvents implements command.EventStore, with the injected faults.
func (s *Spy) AppendEvents(ctx context.Context, userID string, expected int64, meta cart.Metadata, events []cart.Event) (int64, error) {
	s.mu.Lock()
	before := s.beforeAppend
	s.beforeAppend = nil
	s.appends++
	s.mu.Unlock()
	if before != nil {
		before()
	}
	rev, err := s.Store.AppendEvents(ctx, userID, expected, meta, events)
	if err != nil {
		return rev, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loseResponses > 0 {
		s.loseResponses--
		return 0, ErrResponseLost
	}
	return rev, nil
}

// ReadSnapshot implements command.EventStore.
func (s *Spy) ReadSnapshot(ctx context.Context, userID string) ([]byte, error) {
	s.mu.Lock()
	s.snapshotReads++
	s.mu.Unlock()
	return s.Store.ReadSnapshot(ctx, userID)
}

// WriteSnapshot implements command.EventStore, failing when told to.
func (s *Spy) WriteSnapshot(ctx context.Context, userID string, data []byte) error {
	s.mu.Lock()
	err := s.snapshotErr
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.Store.WriteSnapshot(ctx, userID, data); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshotWrites++
	return nil
}
