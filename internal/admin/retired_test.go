package admin

import (
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/projection"
)

// TestStartDropsCollectionsARebuildLeftBehind plays a query-svc stopped
// within a rebuild's drop delay: the replaced collection is recorded as
// retired, and the next start drops it once its time has come, but never
// one not yet due, nor the active collection.
func TestStartDropsCollectionsARebuildLeftBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded FerretDB")
	}
	t.Parallel()
	e := newTestEnv(t, envOptions{})
	ctx := ctxT(t)
	now := time.Now()
	doc := projection.CartWrite{Create: true, Doc: projection.CartDoc{UserID: "u1", Version: 0,
		Cart: cart.Cart{}.Apply(add("p1", 1))}}
	for _, name := range []string{"carts_due", "carts_later"} {
		if _, err := e.catalog.Store(name).WriteCarts(ctx, []projection.CartWrite{doc}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		after time.Time
	}{
		{"carts_due", now.Add(-time.Minute)},
		{"carts_later", now.Add(time.Hour)},
		{"carts", now.Add(-time.Minute)}, // the active one: a rebuild switched back to it
	}
	for _, tt := range tests {
		if err := e.catalog.Retire(ctx, tt.name, tt.after); err != nil {
			t.Fatal(err)
		}
	}

	svc, err := New(Config{Live: e.live, Parking: e.lot, Events: e.log, Retirements: e.catalog, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)

	count := func(name string) int64 {
		n, err := e.catalog.Store(name).CountCarts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The sweep runs in the background, so that a start never waits for
	// MongoDB: wait until both due records are gone.
	eventually(t, "the start-up sweep", func() bool {
		retired, err := e.catalog.Retired(ctx)
		_, active := retired["carts"]
		_, due := retired["carts_due"]
		return err == nil && !active && !due
	})
	if n := count("carts_due"); n != 0 {
		t.Errorf("carts_due holds %d documents after start, want it dropped", n)
	}
	if n := count("carts_later"); n != 1 {
		t.Errorf("carts_later holds %d documents, want 1: it was not due yet", n)
	}
	retired, err := e.catalog.Retired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := retired["carts_later"]; !ok {
		t.Error("carts_later is no longer recorded, so nothing will drop it")
	}
	if got := e.live.Collection(); got != "carts" {
		t.Errorf("active collection = %q", got)
	}
}
