package commandtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
)

// TestEventStore is the contract of command.EventStore: every implementation
// runs it (the memory store in package command, the EventStoreDB adapter
// against the stand-in in package eventstore), so that what the handler is
// tested with is what it runs with. newStore returns an empty store; users
// are fresh per subtest, so one store may serve all of them.
func TestEventStore(t *testing.T, newStore func(t *testing.T) command.EventStore) {
	t.Helper()
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		return c
	}
	meta := func() cart.Metadata {
		return cart.Metadata{CommandID: uuid.NewString(), CommandType: "AddItem", CommandHash: "h1", Principal: "p",
			Time: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	}
	add := func(p string, q int) cart.Event {
		return cart.ItemAdded{ProductID: p, Quantity: q, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 1, Nanos: 500_000_000}}
	}
	type loaded struct {
		rev int64
		e   cart.Event
		m   cart.Metadata
	}
	load := func(t *testing.T, s command.EventStore, user string, from int64) []loaded {
		t.Helper()
		var out []loaded
		if err := s.LoadEvents(ctx(t), user, from, func(rev int64, e cart.Event, m cart.Metadata) error {
			out = append(out, loaded{rev, e, m})
			return nil
		}); err != nil {
			t.Fatalf("LoadEvents(%s, %d): %v", user, from, err)
		}
		return out
	}
	appendOK := func(t *testing.T, s command.EventStore, user string, expected int64, m cart.Metadata, evs ...cart.Event) int64 {
		t.Helper()
		rev, err := s.AppendEvents(ctx(t), user, expected, m, evs)
		if err != nil {
			t.Fatalf("AppendEvents(%s, %d): %v", user, expected, err)
		}
		return rev
	}

	t.Run("missing stream loads nothing", func(t *testing.T) {
		t.Parallel()
		if got := load(t, newStore(t), uuid.NewString(), 0); len(got) != 0 {
			t.Fatalf("loaded %d events from a missing stream", len(got))
		}
	})
	t.Run("appends at expected revisions and loads in order", func(t *testing.T) {
		t.Parallel()
		s, user := newStore(t), uuid.NewString()
		m1, m2 := meta(), meta()
		if rev := appendOK(t, s, user, -1, m1, add("a", 1), add("b", 2)); rev != 1 {
			t.Fatalf("first append returned %d, want 1", rev)
		}
		if rev := appendOK(t, s, user, 1, m2, cart.CartCheckedOut{CheckoutID: "c", Items: []cart.Item{{ProductID: "a", Quantity: 1}}}); rev != 2 {
			t.Fatalf("second append returned %d, want 2", rev)
		}
		got := load(t, s, user, 0)
		if len(got) != 3 {
			t.Fatalf("loaded %d events, want 3", len(got))
		}
		for i, l := range got {
			if l.rev != int64(i) {
				t.Errorf("event %d has revision %d", i, l.rev)
			}
		}
		if e, ok := got[1].e.(cart.ItemAdded); !ok || e != add("b", 2) {
			t.Errorf("event 1 = %#v, want %#v", got[1].e, add("b", 2))
		}
		if co, ok := got[2].e.(cart.CartCheckedOut); !ok || co.CheckoutID != "c" || len(co.Items) != 1 {
			t.Errorf("event 2 = %#v, want the checkout", got[2].e)
		}
		if got[0].m.CommandID != m1.CommandID || got[0].m.CommandHash != "h1" || !got[0].m.Time.Equal(m1.Time) || got[2].m.CommandID != m2.CommandID {
			t.Errorf("metadata not kept: %+v / %+v", got[0].m, got[2].m)
		}
		if tail := load(t, s, user, 2); len(tail) != 1 || tail[0].rev != 2 {
			t.Errorf("LoadEvents from 2 = %+v, want revision 2 only", tail)
		}
	})
	t.Run("wrong expected revision is a conflict and writes nothing", func(t *testing.T) {
		t.Parallel()
		s, user := newStore(t), uuid.NewString()
		if _, err := s.AppendEvents(ctx(t), user, 0, meta(), []cart.Event{add("a", 1)}); !errors.Is(err, cart.ErrConcurrencyConflict) {
			t.Fatalf("append at 0 to a missing stream = %v, want ErrConcurrencyConflict", err)
		}
		appendOK(t, s, user, -1, meta(), add("a", 1))
		for _, expected := range []int64{-1, 1, 7} {
			if _, err := s.AppendEvents(ctx(t), user, expected, meta(), []cart.Event{add("b", 1)}); !errors.Is(err, cart.ErrConcurrencyConflict) {
				t.Fatalf("append at %d to a stream at 0 = %v, want ErrConcurrencyConflict", expected, err)
			}
		}
		if got := load(t, s, user, 0); len(got) != 1 {
			t.Fatalf("stream holds %d events after conflicts, want 1", len(got))
		}
	})
	t.Run("resent batch is recognised, not written twice", func(t *testing.T) {
		t.Parallel()
		s, user := newStore(t), uuid.NewString()
		m := meta()
		first := appendOK(t, s, user, -1, m, add("a", 1), add("b", 1))
		appendOK(t, s, user, first, meta(), add("c", 1))
		if again := appendOK(t, s, user, -1, m, add("a", 1), add("b", 1)); again != first {
			t.Fatalf("resent batch returned %d, want the first append's %d", again, first)
		}
		other := m
		other.CommandHash = "h2"
		if _, err := s.AppendEvents(ctx(t), user, -1, other, []cart.Event{add("a", 1), add("b", 1)}); !errors.Is(err, cart.ErrConcurrencyConflict) {
			t.Fatalf("same command ID with another fingerprint = %v, want ErrConcurrencyConflict", err)
		}
		if got := load(t, s, user, 0); len(got) != 3 {
			t.Fatalf("stream holds %d events, want 3", len(got))
		}
	})
	t.Run("callback error stops the load", func(t *testing.T) {
		t.Parallel()
		s, user := newStore(t), uuid.NewString()
		appendOK(t, s, user, -1, meta(), add("a", 1), add("b", 1))
		stop := errors.New("stop")
		calls := 0
		err := s.LoadEvents(ctx(t), user, 0, func(int64, cart.Event, cart.Metadata) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("LoadEvents = %v after %d calls; want the callback's error after 1", err, calls)
		}
	})
	t.Run("snapshots: none, then the latest", func(t *testing.T) {
		t.Parallel()
		s, user := newStore(t), uuid.NewString()
		if got, err := s.ReadSnapshot(ctx(t), user); err != nil || got != nil {
			t.Fatalf("ReadSnapshot of a new user = %q, %v; want nil, nil", got, err)
		}
		for _, data := range []string{`{"v":1}`, `{"v":2}`} {
			if err := s.WriteSnapshot(ctx(t), user, []byte(data)); err != nil {
				t.Fatalf("WriteSnapshot: %v", err)
			}
		}
		if got, err := s.ReadSnapshot(ctx(t), user); err != nil || string(got) != `{"v":2}` {
			t.Fatalf("ReadSnapshot = %q, %v; want the latest", got, err)
		}
		if got := load(t, s, user, 0); len(got) != 0 {
			t.Fatalf("snapshots show up as %d cart events", len(got))
		}
	})
}
