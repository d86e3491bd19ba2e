package admin

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readside"
)

// failingCatalog is a catalog MongoDB cannot be reached for.
type failingCatalog struct{}

func (failingCatalog) Active(context.Context) (string, error) {
	return "", cart.ErrUnavailable
}
func (failingCatalog) SetActive(context.Context, string) error { return cart.ErrUnavailable }
func (failingCatalog) Drop(context.Context, string) error      { return cart.ErrUnavailable }

func TestLiveFollowsASwitchMadeElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded FerretDB")
	}
	t.Parallel()
	e := newTestEnv(t, envOptions{})
	e.log.append(t, "u1", add("p1", 1))
	e.waitProjected()
	if got := e.live.Collection(); got != "carts" {
		t.Fatalf("collection at start = %q, want carts", got)
	}

	// Another replica builds carts_other and records it as active.
	other := e.catalog.Store("carts_other")
	p, stop, err := e.svc.runProjector("carts_other", other, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitUntil(ctxT(t), func(pr projection.Progress) bool { return pr.CaughtUp }); err != nil {
		t.Fatal(err)
	}
	stop()
	waitingWake, cancelWait := e.notifier.Wait("u1", 99)
	waiting := waitingWake.C
	defer cancelWait()
	if err := e.catalog.SetActive(ctxT(t), "carts_other"); err != nil {
		t.Fatal(err)
	}

	eventually(t, "Live follows the catalog", func() bool { return e.live.Collection() == "carts_other" })
	select {
	case <-waiting:
	case <-ctxT(t).Done():
		t.Fatal("a reader waiting for a version was not woken by the switch")
	}
	// The live projector goes on in the new collection.
	e.log.append(t, "u1", add("p1", 2))
	e.waitProjected()
	if got, want := e.doc("u1"), e.fold("u1", nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("after following: %+v, want %+v", got, want)
	}
	if d, ok, err := other.GetCart(ctxT(t), "u1"); err != nil || !ok || d.Version != 1 {
		t.Fatalf("carts_other holds %+v, %v, %v; want version 1", d, ok, err)
	}
}

// watchedStore counts reads that were still going on, or started, after
// its collection was dropped: they would have answered from a dropped
// collection.
type watchedStore struct {
	readside.CartStore
	dropped, late *atomic.Int64
}

func (w watchedStore) GetCart(ctx context.Context, userID string) (projection.CartDoc, bool, error) {
	d, ok, err := w.CartStore.GetCart(ctx, userID)
	if w.dropped.Load() > 0 {
		w.late.Add(1)
	}
	return d, ok, err
}

// TestLiveRetiresCollectionAfterReadsInFlight switches collections under
// concurrent readers: once the switch returns, no read reaches the old
// collection, so it may be dropped at once.
func TestLiveRetiresCollectionAfterReadsInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded FerretDB")
	}
	t.Parallel()
	var dropped, late atomic.Int64
	var opened atomic.Bool
	e := newTestEnv(t, envOptions{open: func(name string, s readside.CartStore) readside.CartStore {
		// Only the collection Live opens first is watched: Live may open
		// "carts" again when it follows the catalog back to it.
		if name != "carts" || opened.Swap(true) {
			return s
		}
		return watchedStore{CartStore: s, dropped: &dropped, late: &late}
	}})
	e.log.append(t, "u1", add("p1", 1))
	e.waitProjected()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var reads atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := e.live.GetCart(context.Background(), "u1"); err != nil {
					t.Errorf("GetCart: %v", err)
					return
				}
				reads.Add(1)
			}
		})
	}
	eventually(t, "reads on the old collection", func() bool { return reads.Load() >= 20 })
	if _, err := e.live.Hold(); err != nil {
		t.Fatal(err)
	}
	e.live.Release("carts_next")
	dropped.Store(1)
	after := reads.Load()
	eventually(t, "reads after the switch", func() bool { return reads.Load() >= after+20 })
	close(stop)
	wg.Wait()
	if n := late.Load(); n > 0 {
		t.Fatalf("%d reads reached the old collection after the switch", n)
	}
}

// eventually polls cond, for something genuinely asynchronous, for at most 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
