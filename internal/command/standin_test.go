package command_test

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/testing/commandtest"
)

// realStore is the EventStoreDB adapter on a fresh stand-in, spied on.
func realStore(tb testing.TB) (*eventstore.Store, *commandtest.Spy) {
	tb.Helper()
	srv := standin.Start(tb)
	s, err := eventstore.Open(testCtx(tb), srv.ConnectionString(), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s, &commandtest.Spy{Store: s}
}

func quantityIn(tb testing.TB, s *eventstore.Store, user, product string) int {
	tb.Helper()
	var c cart.Cart
	if err := s.LoadEvents(testCtx(tb), user, 0, func(_ int64, e cart.Event, _ cart.Metadata) error {
		c = c.Apply(e)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	it, _ := c.Item(product)
	return it.Quantity
}

func TestStandinConcurrentWritersOnOneCart(t *testing.T) {
	t.Parallel()
	const writers = 20
	s, spy := realStore(t)
	h := command.NewHandler(spy, command.Options{MaxAttempts: 200, SnapshotEvery: 10})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			_, err := h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: uuid.NewString()}, addItem("a", 1))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("writer failed: %v", err)
		}
	}
	if q := quantityIn(t, s, "u", "a"); q != writers {
		t.Fatalf("quantity %d, want %d (one per writer)", q, writers)
	}
	t.Logf("%d appends for %d writers", spy.Appends(), writers)
}

func TestStandinLongHistoryLoadIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 10,000-event history")
	}
	t.Parallel()
	const history, batch = 10_000, 500
	s, spy := realStore(t)
	// The history is written as imported data would be: straight into the
	// stream, no snapshot.
	evs := make([]cart.Event, 0, batch)
	for rev := int64(0); rev < history; rev += batch {
		evs = evs[:0]
		for i := range batch {
			if rev == 0 && i == 0 {
				evs = append(evs, cart.ItemAdded{ProductID: "a", Quantity: 1, UnitPrice: eur(3)})
				continue
			}
			evs = append(evs, cart.ItemQuantityChanged{ProductID: "a", Quantity: 1 + int(rev+int64(i))%2})
		}
		if _, err := s.AppendEvents(testCtx(t), "u", rev-1, cart.Metadata{CommandID: uuid.NewString()}, evs); err != nil {
			t.Fatal(err)
		}
	}
	const every = 25
	h := command.NewHandler(spy, command.Options{SnapshotEvery: every})

	// Without a snapshot the first command replays everything, and leaves one.
	f := fixture{spy: spy, h: h}
	began := time.Now()
	f.do(t, command.Envelope{UserID: "u"}, toggle(history))
	if n := spy.EventsRead(); n != history {
		t.Fatalf("first command read %d events, want the whole history (%d)", n, history)
	}
	if spy.SnapshotWrites() != 1 {
		t.Fatalf("first command wrote %d snapshots, want 1", spy.SnapshotWrites())
	}
	t.Logf("replaying %d events took %s", history, time.Since(began))
	began = time.Now()
	// From then on a command reads the snapshot's event and what came after.
	most := 0
	for i := range 2*every + 10 {
		spy.Reset()
		f.do(t, command.Envelope{UserID: "u"}, toggle(history+1+i))
		most = max(most, spy.EventsRead())
	}
	if most > every+1 {
		t.Fatalf("a command read %d events, want at most %d", most, every+1)
	}
	t.Logf("history %d events: at most %d events read per command, %d commands in %s", history, most, 2*every+10, time.Since(began))
}

func TestStandinResendAfterLostAppendResponse(t *testing.T) {
	t.Parallel()
	s, spy := realStore(t)
	h := command.NewHandler(spy, command.Options{})
	env := command.Envelope{UserID: "u", CommandID: uuid.NewString()}
	spy.LoseAppendResponses(1)
	if _, err := h.Handle(testCtx(t), env, addItem("a", 1)); !errors.Is(err, cart.ErrUnavailable) {
		t.Fatalf("first attempt = %v, want unavailable", err)
	}
	res, err := h.Handle(testCtx(t), env, addItem("a", 1))
	if err != nil || !res.Duplicate || res.Version != 0 {
		t.Fatalf("resend = %+v, %v; want the first attempt's version 0", res, err)
	}
	if q := quantityIn(t, s, "u", "a"); q != 1 {
		t.Fatalf("quantity %d, want 1", q)
	}
}

func TestStandinIdenticalCommandsRacing(t *testing.T) {
	t.Parallel()
	s, spy := realStore(t)
	h := command.NewHandler(spy, command.Options{MaxAttempts: 50})
	env := command.Envelope{UserID: "u", CommandID: uuid.NewString()}
	const racers = 8
	versions := make([]int64, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			var res command.Result
			res, errs[i] = h.Handle(testCtx(t), env, addItem("a", 1))
			versions[i] = res.Version
		})
	}
	wg.Wait()
	for i := range racers {
		if errs[i] != nil || versions[i] != 0 {
			t.Fatalf("racer %d: version %d, %v; want 0", i, versions[i], errs[i])
		}
	}
	if q := quantityIn(t, s, "u", "a"); q != 1 {
		t.Fatalf("quantity %d, want the command applied once", q)
	}
}
