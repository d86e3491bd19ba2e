package eventstore

import (
	"context"
	"errors"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// nextEvent skips checkpoints and the caught-up marker until an event comes.
func nextEvent(tb testing.TB, sub eventlog.Subscription) *eventlog.Event {
	tb.Helper()
	for {
		m, err := sub.Next(testCtx(tb))
		if err != nil {
			tb.Fatalf("Next: %v", err)
		}
		if m.Event != nil {
			return m.Event
		}
	}
}

func subscribe(tb testing.TB, s *Store, from *eventlog.Position) eventlog.Subscription {
	tb.Helper()
	sub, err := s.Subscribe(testCtx(tb), from)
	if err != nil {
		tb.Fatalf("Subscribe: %v", err)
	}
	tb.Cleanup(func() { _ = sub.Close() })
	return sub
}

func TestSubscribeAllDeliversOnlyCartStreams(t *testing.T) {
	t.Parallel()
	srv, s := open(t)
	ctx := testCtx(t)
	c := rawClient(t, srv)
	mustAppend(t, s, "a", -1, meta(uuid.NewString()), added("p", 1))
	if err := s.WriteSnapshot(ctx, "a", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppendToStream(ctx, "orders-1", esdb.AppendToStreamOptions{},
		esdb.EventData{EventType: "OrderPlaced", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "b", -1, meta(uuid.NewString()), added("q", 2))

	sub := subscribe(t, s, nil)
	var got []*eventlog.Event
	caughtUp := false
	for !caughtUp {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		set := 0
		if m.Event != nil {
			set++
			got = append(got, m.Event)
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
	if len(got) != 2 || got[0].StreamID != "cart-a" || got[1].StreamID != "cart-b" || got[1].UserID != "b" {
		t.Fatalf("catch-up delivered %d events %v; want cart-a then cart-b only", len(got), got)
	}

	// Live: an event written after catching up arrives too.
	mustAppend(t, s, "a", 0, meta(uuid.NewString()), cart.ItemRemoved{ProductID: "p"})
	live := nextEvent(t, sub)
	if live.StreamID != "cart-a" || live.Revision != 1 || live.Type != cart.TypeItemRemoved {
		t.Fatalf("live event = %s@%d %s; want cart-a@1 ItemRemoved", live.StreamID, live.Revision, live.Type)
	}

	// Resuming from a position starts strictly after it.
	resumed := subscribe(t, s, &got[0].Position)
	if e := nextEvent(t, resumed); e.StreamID != "cart-b" {
		t.Fatalf("resumed after cart-a@0: first event %s@%d; want cart-b", e.StreamID, e.Revision)
	}
}

func TestSubscriptionDropIsUnavailable(t *testing.T) {
	t.Parallel()
	srv, s := open(t)
	sub := subscribe(t, s, nil)
	for {
		m, err := sub.Next(testCtx(t))
		if err != nil {
			t.Fatalf("Next before drop: %v", err)
		}
		if m.CaughtUp {
			break
		}
	}
	srv.DropSubscriptions()
	_, err := sub.Next(testCtx(t))
	if !errors.Is(err, cart.ErrUnavailable) {
		t.Fatalf("Next after drop = %v; want ErrUnavailable", err)
	}
	if _, again := sub.Next(testCtx(t)); !errors.Is(again, cart.ErrUnavailable) {
		t.Fatalf("Next after the drop was reported = %v; want the drop error again", again)
	}
}

func TestSubscriptionCloseAndContext(t *testing.T) {
	t.Parallel()
	_, s := open(t)
	sub := subscribe(t, s, nil)

	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if _, err := sub.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context = %v; want context.Canceled", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := sub.Next(testCtx(t)); !errors.Is(err, ErrSubscriptionClosed) {
		t.Fatalf("Next after Close = %v; want ErrSubscriptionClosed", err)
	}
}

// A subscription that is the first call of a new Store must not keep other
// calls waiting as if the store had not answered yet (it is long-lived, but
// the store answered as soon as it confirmed the subscription).
func TestSubscriptionAsFirstCallDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	_, s := open(t)
	subscribe(t, s, nil)
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping after subscribing = %v, want nil", err)
	}
}
