// Package commandtest holds test doubles and the contract test suite of
// command.EventStore, so that the in-memory fake and the EventStoreDB
// adapter are held to the same behaviour, and so that other packages' tests
// (the gRPC server's) can run the real Handler without a store process.
package commandtest

import (
	"context"
	"fmt"
	"sync"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
)

// MemoryStore is an in-memory command.EventStore with EventStoreDB's
// semantics where the handler relies on them: revisions from 0, optimistic
// concurrency on the expected revision, a resent batch (same command ID and
// fingerprint at the same expected revision) recognised instead of written
// twice. Events go through the JSON codec, as they would in the store.
type MemoryStore struct {
	mu        sync.Mutex
	streams   map[string][]stored
	snapshots map[string][]byte
}

type stored struct {
	typ  string
	data []byte
	meta cart.Metadata
}

var _ command.EventStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{streams: make(map[string][]stored), snapshots: make(map[string][]byte)}
}

// LoadEvents implements command.EventStore.
func (s *MemoryStore) LoadEvents(ctx context.Context, userID string, from int64, fn func(int64, cart.Event, cart.Metadata) error) error {
	s.mu.Lock()
	evs := s.streams[userID] // appends never modify existing elements
	s.mu.Unlock()
	for rev := max(from, 0); rev < int64(len(evs)); rev++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := cart.Unmarshal(evs[rev].typ, evs[rev].data)
		if err != nil {
			return fmt.Errorf("memory store: load %s@%d: %w", userID, rev, err)
		}
		if err := fn(rev, e, evs[rev].meta); err != nil {
			return fmt.Errorf("memory store: load %s: %w", userID, err)
		}
	}
	return nil
}

// AppendEvents implements command.EventStore.
func (s *MemoryStore) AppendEvents(ctx context.Context, userID string, expected int64, meta cart.Metadata, events []cart.Event) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(events) == 0 || expected < -1 {
		return 0, fmt.Errorf("memory store: append %d events at %d: invalid", len(events), expected)
	}
	batch := make([]stored, len(events))
	for i, e := range events {
		b, err := cart.Marshal(e)
		if err != nil {
			return 0, err
		}
		batch[i] = stored{typ: e.Type(), data: b, meta: meta}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := int64(len(s.streams[userID])) - 1
	if expected != cur {
		if s.resent(userID, expected, meta, len(events)) {
			return expected + int64(len(events)), nil
		}
		return 0, fmt.Errorf("memory store: append to %s: expected %d, at %d: %w", userID, expected, cur, cart.ErrConcurrencyConflict)
	}
	s.streams[userID] = append(s.streams[userID], batch...)
	return cur + int64(len(events)), nil
}

// resent tells whether the n events after expected were written by the same
// command (what EventStoreDB decides by comparing the derived event IDs).
func (s *MemoryStore) resent(userID string, expected int64, meta cart.Metadata, n int) bool {
	evs := s.streams[userID]
	if meta.CommandID == "" || expected+int64(n) >= int64(len(evs)) {
		return false
	}
	for i := range n {
		m := evs[expected+1+int64(i)].meta
		if m.CommandID != meta.CommandID || m.CommandHash != meta.CommandHash {
			return false
		}
	}
	return true
}

// ReadSnapshot implements command.EventStore.
func (s *MemoryStore) ReadSnapshot(ctx context.Context, userID string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshots[userID], ctx.Err()
}

// WriteSnapshot implements command.EventStore.
func (s *MemoryStore) WriteSnapshot(ctx context.Context, userID string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshots[userID] = append([]byte(nil), data...)
	return nil
}

// Len is the number of events in userID's stream, for tests that check
// that nothing (or exactly so much) was written.
func (s *MemoryStore) Len(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams[userID])
}

// Metadata returns the metadata of userID's event at revision rev.
func (s *MemoryStore) Metadata(userID string, rev int64) cart.Metadata {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[userID][rev].meta
}
