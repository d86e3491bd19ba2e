package command

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
)

// mapStore is the least EventStore the handler runs on, so that these
// tests need nothing outside the package: streams in a map, optimistic
// concurrency, no snapshots.
type mapStore struct {
	mu      sync.Mutex
	streams map[string][]storedEvent
}

type storedEvent struct {
	e cart.Event
	m cart.Metadata
}

// euroEach prices every product at EUR 1.
type euroEach struct{}

func (euroEach) Prices(_ context.Context, ids []string) (map[string]cart.Money, error) {
	out := make(map[string]cart.Money, len(ids))
	for _, id := range ids {
		out[id] = cart.Money{CurrencyCode: "EUR", Units: 1}
	}
	return out, nil
}

func newMapStore() *mapStore { return &mapStore{streams: map[string][]storedEvent{}} }

func (s *mapStore) LoadEvents(_ context.Context, userID string, from int64, fn func(int64, cart.Event, cart.Metadata) error) error {
	s.mu.Lock()
	evs := s.streams[userID]
	s.mu.Unlock()
	for rev := max(from, 0); rev < int64(len(evs)); rev++ {
		if err := fn(rev, evs[rev].e, evs[rev].m); err != nil {
			return err
		}
	}
	return nil
}

func (s *mapStore) AppendEvents(_ context.Context, userID string, expected int64, m cart.Metadata, events []cart.Event) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := int64(len(s.streams[userID])) - 1; cur != expected {
		return 0, fmt.Errorf("map store: at %d, expected %d: %w", cur, expected, cart.ErrConcurrencyConflict)
	}
	for _, e := range events {
		s.streams[userID] = append(s.streams[userID], storedEvent{e, m})
	}
	return int64(len(s.streams[userID])) - 1, nil
}

func (s *mapStore) ReadSnapshot(context.Context, string) ([]byte, error) { return nil, nil }
func (s *mapStore) WriteSnapshot(context.Context, string, []byte) error  { return nil }

// Given a handler that served many carts, when every command is over, then
// no lock is left behind: the map holds only carts in use.
func TestLocksAreForgottenAfterUse(t *testing.T) {
	t.Parallel()
	h := NewHandler(newMapStore(), Options{CacheSize: 8, Catalog: euroEach{}})
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			for range 4 {
				user := fmt.Sprintf("u%d", i%16)
				if _, err := h.Handle(context.Background(), Envelope{UserID: user, CommandID: uuid.NewString()},
					cart.AddItem{ProductID: fmt.Sprintf("p%d", i), Quantity: 1}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := h.locks.len(); n != 0 {
		t.Fatalf("%d locks left after all commands ended, want 0", n)
	}
	if n := h.cache.len(); n != 8 {
		t.Fatalf("%d carts cached, want the bound of 8", n)
	}
}

// Given a cart locked by a command, when another command's context ends
// while it waits, then it gives up with the context's error and leaves no
// reference behind.
func TestWaitingForACartRespectsTheContext(t *testing.T) {
	t.Parallel()
	h := NewHandler(newMapStore(), Options{})
	unlock, err := h.locks.lock(context.Background(), "u")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = h.Handle(ctx, Envelope{UserID: "u"}, cart.ClearCart{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Handle on a locked cart with an ended context = %v, want context.Canceled", err)
	}
	if n := h.locks.len(); n != 1 {
		t.Fatalf("%d locks while one command holds the cart, want 1", n)
	}
	unlock()
	if n := h.locks.len(); n != 0 {
		t.Fatalf("%d locks after the holder left, want 0", n)
	}
	if _, err := h.Handle(context.Background(), Envelope{UserID: "u"}, cart.ClearCart{}); err != nil {
		t.Fatalf("Handle after the holder left = %v", err)
	}
}

func TestStateCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	st := func(v int64) *state { s := newState(1); s.version = v; return s }
	tests := []struct {
		name  string
		steps func(c *stateCache)
		want  map[string]int64 // user -> version; absent: -1
	}{
		{"bound kept, oldest out", func(c *stateCache) {
			c.put("a", st(1))
			c.put("b", st(2))
			c.put("c", st(3))
		}, map[string]int64{"a": -1, "b": 2, "c": 3}},
		{"a put refreshes", func(c *stateCache) {
			c.put("a", st(1))
			c.put("b", st(2))
			c.put("a", st(4))
			c.put("c", st(3))
		}, map[string]int64{"a": 4, "b": -1, "c": 3}},
		{"take removes", func(c *stateCache) {
			c.put("a", st(1))
			c.take("a")
		}, map[string]int64{"a": -1}},
		{"nil is not cached", func(c *stateCache) {
			c.put("a", nil)
		}, map[string]int64{"a": -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newStateCache(2)
			tt.steps(c)
			for user, want := range tt.want {
				got := int64(-1)
				if s := c.take(user); s != nil {
					got = s.version
				}
				if got != want {
					t.Errorf("%s: version %d, want %d", user, got, want)
				}
			}
		})
	}
	if c := newStateCache(-1); func() bool { c.put("a", st(1)); return c.take("a") != nil }() {
		t.Error("a disabled cache kept a cart")
	}
}
