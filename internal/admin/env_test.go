package admin

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readmodel"
	"github.com/acme/cart/internal/readside"
)

// testEnv is Live and Service on an embedded FerretDB (the real readmodel
// adapters) and an in-memory event log.
type testEnv struct {
	t        *testing.T
	log      *fakeLog
	client   *readmodel.Client
	catalog  *readmodel.Catalog
	lot      *readmodel.ParkingLot
	notifier *projection.Notifier
	live     *readside.Live
	svc      *Service
}

type envOptions struct {
	decode projection.Decoder
	// catalog, if set, wraps the catalog the operations use (failure injection).
	catalog func(readside.Catalog) readside.Catalog
	// open, if set, wraps every collection's store Live opens.
	open func(name string, s readside.CartStore) readside.CartStore
}

func testLogger() *slog.Logger {
	if os.Getenv("ADMIN_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestEnv(t *testing.T, opts envOptions) *testEnv {
	t.Helper()
	srv := embeddedmongo.StartForTest(t)
	client, err := readmodel.ConnectWith(context.Background(), srv.URI(), readmodel.FerretDBCompat())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Close(ctx)
	})
	e := &testEnv{t: t, log: newFakeLog(), client: client, notifier: projection.NewNotifier()}
	e.catalog = client.Catalog("cart")
	e.lot = client.ParkingLot("cart")
	var cat readside.Catalog = e.catalog
	if opts.catalog != nil {
		cat = opts.catalog(cat)
	}
	e.live, err = readside.New(readside.Config{
		Catalog: cat,
		Open: func(carts string) readside.CartStore {
			var s readside.CartStore = e.catalog.Store(carts)
			if opts.open != nil {
				s = opts.open(carts, s)
			}
			return s
		},
		Projection: projection.Config{
			Source: e.log, Parker: e.lot, Notifier: e.notifier, Decode: opts.decode, Log: testLogger(),
			MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		},
		FollowInterval: 50 * time.Millisecond,
		Log:            testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc, err = New(Config{Live: e.live, Parking: e.lot, Events: e.log, Log: testLogger(), ProgressInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.live.Run(ctx)
	}()
	t.Cleanup(func() {
		e.svc.Close()
		cancel()
		<-done
	})
	return e
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitProjected waits until the live projector has stored everything up to
// the log's last event.
func (e *testEnv) waitProjected() {
	e.t.Helper()
	head, _ := e.log.HeadPosition(context.Background())
	target := eventlog.Position{Commit: head.Commit, Prepare: head.Prepare}
	ctx := ctxT(e.t)
	for {
		if _, p := e.live.Current(); p != nil {
			err := p.WaitUntil(ctx, func(pr projection.Progress) bool { return pr.CaughtUp && reached(pr.Checkpoint, target) })
			if err != nil {
				e.t.Fatalf("live projector did not reach %v: %v (%+v)", target, err, p.Progress())
			}
			return
		}
		select {
		case <-ctx.Done():
			e.t.Fatal("the live projector never started")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// doc reads the user's live document.
func (e *testEnv) doc(user string) projection.CartDoc {
	e.t.Helper()
	d, ok, err := e.live.GetCart(ctxT(e.t), user)
	if err != nil {
		e.t.Fatal(err)
	}
	if !ok {
		d = projection.CartDoc{UserID: user, Version: -1}
	}
	return d
}

// fold is what a user's document must be after the log's events up to the
// first one the decoder refuses.
func (e *testEnv) fold(user string, dec projection.Decoder) projection.CartDoc {
	e.t.Helper()
	evs, _ := e.log.snapshot()
	d := projection.CartDoc{UserID: user, Version: -1}
	for _, ev := range evs {
		if ev.UserID != user {
			continue
		}
		ce, err := projection.DecodeEvent(dec, ev)
		if err != nil {
			d.Stale = true
			break
		}
		d.Cart, d.Version, d.UpdatedAt = d.Cart.Apply(ce), ev.Revision, ev.Created
	}
	return d
}

func add(product string, qty int) cart.ItemAdded {
	return cart.ItemAdded{ProductID: product, Quantity: qty, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 2, Nanos: 500_000_000}}
}
