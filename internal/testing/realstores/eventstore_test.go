package realstores_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/testing/commandtest"
	"github.com/acme/cart/internal/testing/realstores"
)

// testCtx bounds one step well above what it needs, so that a hang fails the
// test instead of the whole run.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func meta() cart.Metadata {
	return cart.Metadata{
		CommandID:   uuid.NewString(),
		CommandType: "AddItem",
		CommandHash: "h-" + uuid.NewString(),
		Principal:   "tester",
		Time:        time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func added(product string, q int) cart.Event {
	return cart.ItemAdded{ProductID: product, Quantity: q, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 2}}
}

func mustAppend(t *testing.T, s *eventstore.Store, user string, expected int64, m cart.Metadata, evs ...cart.Event) int64 {
	t.Helper()
	rev, err := s.AppendEvents(testCtx(t), user, expected, m, evs)
	if err != nil {
		t.Fatalf("AppendEvents(%s, %d): %v", user, expected, err)
	}
	return rev
}

func subscribe(t *testing.T, s *eventstore.Store, from *eventlog.Position) eventlog.Subscription {
	t.Helper()
	sub, err := s.Subscribe(testCtx(t), from)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// nextOf returns the next event of one of users, skipping checkpoints, the
// caught-up marker and other tests' carts (the node is shared).
func nextOf(t *testing.T, sub eventlog.Subscription, users ...string) *eventlog.Event {
	t.Helper()
	for {
		m, err := sub.Next(testCtx(t))
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if m.Event != nil && slices.Contains(users, m.Event.UserID) {
			return m.Event
		}
	}
}

// TestEventStoreDB runs the adapter against the real EventStoreDB: the
// command.EventStore contract (the suite the in-memory fake and the stand-in
// pass) and the read side's reads and subscriptions, on one node shared by
// the subtests (each works on its own users).
func TestEventStoreDB(t *testing.T) {
	t.Parallel()
	conn := realstores.StartEventStoreDB(t)
	s, err := eventstore.Open(context.Background(), conn, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	t.Run("command.EventStore contract", func(t *testing.T) {
		t.Parallel()
		commandtest.TestEventStore(t, func(*testing.T) command.EventStore { return s })
	})
	t.Run("read stream", func(t *testing.T) {
		t.Parallel()
		testReadStream(t, s)
	})
	t.Run("subscribe to $all from the start and from a position", func(t *testing.T) {
		t.Parallel()
		testSubscribeAll(t, s)
	})
}

func testReadStream(t *testing.T, s *eventstore.Store) {
	ctx := testCtx(t)
	user := uuid.NewString()
	before := time.Now()
	m1, m2 := meta(), meta()
	if rev := mustAppend(t, s, user, -1, m1, added("p1", 1), added("p2", 3)); rev != 1 {
		t.Fatalf("first append: revision %d, want 1", rev)
	}
	if rev := mustAppend(t, s, user, 1, m2, cart.ItemRemoved{ProductID: "p1"}); rev != 2 {
		t.Fatalf("second append: revision %d, want 2", rev)
	}

	got, err := s.ReadStream(ctx, user, 0, 0)
	if err != nil {
		t.Fatalf("ReadStream: %v", err)
	}
	wantTypes := []string{cart.TypeItemAdded, cart.TypeItemAdded, cart.TypeItemRemoved}
	if len(got) != len(wantTypes) {
		t.Fatalf("ReadStream returned %d events, want %d", len(got), len(wantTypes))
	}
	for i, e := range got {
		if e.Revision != int64(i) || e.Type != wantTypes[i] || e.StreamID != eventstore.StreamName(user) || e.UserID != user {
			t.Errorf("event %d = rev %d type %s stream %s user %s", i, e.Revision, e.Type, e.StreamID, e.UserID)
		}
		// The node stamps the time in .NET ticks; a wrong conversion would
		// be off by years, not by the test's duration.
		if e.Created.Before(before.Add(-time.Hour)) || e.Created.After(time.Now().Add(time.Hour)) {
			t.Errorf("event %d created %v; want about now (%v)", i, e.Created, before)
		}
		if e.Position == (eventlog.Position{}) {
			t.Errorf("event %d has no $all position", i)
		}
		if i > 0 && !got[i-1].Position.Less(e.Position) {
			t.Errorf("event %d: position %v not after %v", i, e.Position, got[i-1].Position)
		}
	}
	if want := eventstore.EventID(m1.CommandID, m1.CommandHash, 1, got[1].Data).String(); got[1].EventID != want {
		t.Errorf("event 1 ID = %s, want the derived %s", got[1].EventID, want)
	}
	if want := eventstore.EventID(m2.CommandID, m2.CommandHash, 0, got[2].Data).String(); got[2].EventID != want {
		t.Errorf("event 2 ID = %s, want the derived %s", got[2].EventID, want)
	}
	var data map[string]any
	if err := json.Unmarshal(got[1].Data, &data); err != nil || data["product_id"] != "p2" || data["quantity"] != float64(3) {
		t.Errorf("event 1 data = %s (%v); want product p2, quantity 3", got[1].Data, err)
	}
	if gm, err := cart.UnmarshalMetadata(got[2].Metadata); err != nil || gm.CommandID != m2.CommandID || !gm.Time.Equal(m2.Time) {
		t.Errorf("event 2 metadata = %+v (%v); want command %s at %v", gm, err, m2.CommandID, m2.Time)
	}

	tail, err := s.ReadStream(ctx, user, 1, 1)
	if err != nil || len(tail) != 1 || tail[0].Revision != 1 {
		t.Errorf("ReadStream from 1, count 1 = %d events (%v); want revision 1 only", len(tail), err)
	}
	if none, err := s.ReadStream(ctx, uuid.NewString(), 0, 0); err != nil || len(none) != 0 {
		t.Errorf("ReadStream of a missing stream = %d events, %v; want none, nil", len(none), err)
	}
	// The real node writes its own events too (projections, epochs): the
	// head is at or after the last cart event, not necessarily at it.
	head, err := s.HeadPosition(ctx)
	if err != nil || head.Less(got[2].Position) {
		t.Errorf("HeadPosition = %v, %v; want at or after %v", head, err, got[2].Position)
	}
}

func testSubscribeAll(t *testing.T, s *eventstore.Store) {
	ctx := testCtx(t)
	a, b := uuid.NewString(), uuid.NewString()
	mustAppend(t, s, a, -1, meta(), added("p", 1))
	// The snapshot stream ("cartsnapshot-a") and its metadata stream
	// ("$$cartsnapshot-a") start like a cart stream but are not one.
	if err := s.WriteSnapshot(ctx, a, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, b, -1, meta(), added("q", 2))

	// From the start: the whole log up to now, then the caught-up marker.
	// Everything delivered must be a cart event (the node's own streams,
	// $-prefixed, and the snapshot streams are filtered out by the server),
	// in $all order.
	sub := subscribe(t, s, nil)
	var mine []*eventlog.Event
	var last *eventlog.Position
	for caughtUp := false; !caughtUp; {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		set := 0
		if m.Event != nil {
			set++
			if !strings.HasPrefix(m.Event.StreamID, eventstore.StreamPrefix) {
				t.Errorf("the filter let through %s@%d (%s)", m.Event.StreamID, m.Event.Revision, m.Event.Type)
			}
			if last != nil && !last.Less(m.Event.Position) {
				t.Errorf("%s@%d at %v delivered after %v", m.Event.StreamID, m.Event.Revision, m.Event.Position, *last)
			}
			last = &m.Event.Position
			if slices.Contains([]string{a, b}, m.Event.UserID) {
				mine = append(mine, m.Event)
			}
		}
		if m.Checkpoint != nil {
			set++
		}
		if m.CaughtUp {
			set++
			caughtUp = true
		}
		if set != 1 {
			t.Fatalf("message %+v sets %d fields; want exactly one", m, set)
		}
	}
	if len(mine) != 2 || mine[0].StreamID != "cart-"+a || mine[0].Revision != 0 || mine[1].StreamID != "cart-"+b || mine[1].UserID != b {
		t.Fatalf("catch-up delivered %d of this test's events %+v; want cart-a@0 then cart-b@0", len(mine), mine)
	}

	// Live: an event written after catching up arrives too.
	mustAppend(t, s, a, 0, meta(), cart.ItemRemoved{ProductID: "p"})
	live := nextOf(t, sub, a, b)
	if live.UserID != a || live.Revision != 1 || live.Type != cart.TypeItemRemoved {
		t.Fatalf("live event = %s@%d %s; want cart-a@1 ItemRemoved", live.StreamID, live.Revision, live.Type)
	}

	// From a position: strictly after it, which is how the projector
	// resumes from a stored checkpoint without applying an event twice.
	from := mine[0].Position
	resumed := subscribe(t, s, &from)
	first, err := resumed.Next(ctx)
	for err == nil && first.Event == nil {
		first, err = resumed.Next(ctx)
	}
	if err != nil {
		t.Fatalf("Next after resuming: %v", err)
	}
	if !from.Less(first.Event.Position) {
		t.Errorf("resumed from %v: first event %s@%d at %v is not after it", from, first.Event.StreamID, first.Event.Revision, first.Event.Position)
	}
	var again []*eventlog.Event
	if slices.Contains([]string{a, b}, first.Event.UserID) {
		again = append(again, first.Event)
	}
	for len(again) < 2 {
		again = append(again, nextOf(t, resumed, a, b))
	}
	if again[0].StreamID != "cart-"+b || again[1].StreamID != "cart-"+a || again[1].Revision != 1 {
		t.Errorf("resumed after cart-a@0: got %s@%d, %s@%d; want cart-b@0, cart-a@1",
			again[0].StreamID, again[0].Revision, again[1].StreamID, again[1].Revision)
	}
}
