package admin

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/cart/internal/readside"
)

// appender appends events to a few users' streams, one every few
// milliseconds (FerretDB writes a few hundred documents a second), until
// stopped.
func (e *testEnv) startAppender(users ...string) (stop func()) {
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(3 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			case <-t.C:
				e.log.append(e.t, users[i%len(users)], add(fmt.Sprintf("p%d", i%3), 1))
			}
		}
	}()
	return sync.OnceFunc(func() { close(quit); <-done })
}

// startMonotonicReader reads the users' carts through Live until stopped
// and fails the test if a cart goes back in versions or a read fails.
func (e *testEnv) startMonotonicReader(users ...string) (stop func() int) {
	done, quit := make(chan struct{}), make(chan struct{})
	reads := 0
	go func() {
		defer close(done)
		seen := map[string]int64{}
		var hist []string // the last reads, for the failure message
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			u := users[i%len(users)]
			coll := e.live.Collection()
			d, ok, err := e.live.GetCart(context.Background(), u)
			if err != nil {
				e.t.Errorf("GetCart(%s): %v", u, err)
				return
			}
			v := int64(-1)
			if ok {
				v = d.Version
			}
			if prev, ok := seen[u]; ok && v < prev {
				e.t.Errorf("GetCart(%s) went back from version %d to %d; last reads: %v", u, prev, v, hist)
				return
			}
			seen[u] = v
			reads++
			hist = append(hist[max(0, len(hist)-20):], fmt.Sprintf("%s@%d in %s", u, v, coll))
		}
	}()
	return func() int { close(quit); <-done; return reads }
}

func (e *testEnv) assertMatchesLog(users ...string) {
	e.t.Helper()
	for _, u := range users {
		got, want := e.doc(u), e.fold(u, nil)
		got.StaleReason = ""
		if !reflect.DeepEqual(got, want) {
			e.t.Errorf("%s = %+v\nwant %+v", u, got, want)
		}
	}
}

func TestRebuildSwitchesWithoutLosingOrRepeatingEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded FerretDB")
	}
	t.Parallel()
	e := newTestEnv(t, envOptions{})
	users := []string{"u1", "u2", "u3"}
	for i := range 3 {
		for _, u := range users {
			e.log.append(t, u, add(fmt.Sprintf("p%d", i), 1))
		}
	}
	e.waitProjected()
	head, _ := e.log.HeadPosition(context.Background())

	stopAppender := e.startAppender(users...)
	stopReader := e.startMonotonicReader(users...)
	var reports []Progress
	res, err := e.svc.Rebuild(ctxT(t), func(p Progress) { reports = append(reports, p) })
	stopAppender()
	reads := stopReader()
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if reads == 0 {
		t.Error("no read during the rebuild")
	}
	if !strings.HasPrefix(res.Collection, "carts_") || res.Previous != "carts" || res.Carts != 3 || res.EventsProcessed < 9 {
		t.Errorf("result = %+v", res)
	}
	if len(reports) < 2 || reports[0].Target.Commit != head.Commit || reports[len(reports)-1].EventsProcessed != res.EventsProcessed {
		t.Errorf("reports = %+v; want the first aimed at the head %d, the last at the result's count", reports, head.Commit)
	}
	if got := e.live.Collection(); got != res.Collection {
		t.Errorf("Live reads %q, want %q", got, res.Collection)
	}
	if active, err := e.catalog.Active(ctxT(t)); err != nil || active != res.Collection {
		t.Errorf("catalog says %q, %v; want %q", active, err, res.Collection)
	}
	// The previous collection and its checkpoint go, after DropDelay.
	old := e.catalog.Store("carts")
	eventually(t, "the previous collection and checkpoint dropped", func() bool {
		n, err := old.CountCarts(ctxT(t))
		cp, cerr := old.LoadCheckpoint(ctxT(t), "carts")
		return err == nil && n == 0 && cerr == nil && cp == nil
	})
	// Every event written before, during and after the switch, exactly once.
	e.log.append(t, "u1", add("after", 1))
	e.waitProjected()
	e.assertMatchesLog(users...)
}

// recordingCatalog records drops and can fail SetActive.
type recordingCatalog struct {
	readside.Catalog
	mu        sync.Mutex
	drops     []string
	setActive func(ctx context.Context, name string) error
}

func (c *recordingCatalog) Drop(ctx context.Context, name string) error {
	c.mu.Lock()
	c.drops = append(c.drops, name)
	c.mu.Unlock()
	return c.Catalog.Drop(ctx, name)
}

func (c *recordingCatalog) SetActive(ctx context.Context, name string) error {
	if c.setActive != nil {
		return c.setActive(ctx, name)
	}
	return c.Catalog.SetActive(ctx, name)
}

func (c *recordingCatalog) dropped() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.drops)
}

func TestRebuildThatDoesNotSwitchKeepsTheCurrentCollection(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded FerretDB")
	}
	t.Parallel()
	errLost := errors.New("connection lost")
	tests := []struct {
		name string
		// setActive replaces the catalog's SetActive (nil: the real one).
		setActive func(real readside.Catalog) func(context.Context, string) error
		// cancelAtFirstReport cancels the caller's context.
		cancelAtFirstReport bool
		wantErr             error
	}{
		{name: "caller cancels", cancelAtFirstReport: true, wantErr: context.Canceled},
		{name: "recording the switch fails", wantErr: errLost,
			setActive: func(readside.Catalog) func(context.Context, string) error {
				return func(context.Context, string) error { return errLost }
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec *recordingCatalog
			e := newTestEnv(t, envOptions{catalog: func(c readside.Catalog) readside.Catalog {
				rec = &recordingCatalog{Catalog: c}
				if tt.setActive != nil {
					rec.setActive = tt.setActive(c)
				}
				return rec
			}})
			e.log.append(t, "u1", add("p1", 1))
			e.waitProjected()

			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			_, err := e.svc.Rebuild(ctx, func(Progress) {
				if tt.cancelAtFirstReport {
					cancel()
				}
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Rebuild = %v, want %v", err, tt.wantErr)
			}
			if got := e.live.Collection(); got != "carts" {
				t.Fatalf("Live reads %q after a failed rebuild, want carts", got)
			}
			drops := rec.dropped()
			if len(drops) != 2 || drops[0] != drops[1] || !strings.HasPrefix(drops[0], "carts_") {
				t.Errorf("drops = %v; want the new collection dropped before and after", drops)
			}
			// The live projector goes on in the current collection.
			e.log.append(t, "u1", add("p1", 1))
			e.waitProjected()
			e.assertMatchesLog("u1")
			if n, err := e.catalog.Store(drops[0]).CountCarts(ctxT(t)); err != nil || n != 0 {
				t.Errorf("the abandoned collection holds %d documents, %v", n, err)
			}
		})
	}
}

func TestRebuildWhoseSwitchLandedDespiteAnError(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded FerretDB")
	}
	t.Parallel()
	e := newTestEnv(t, envOptions{catalog: func(c readside.Catalog) readside.Catalog {
		return &recordingCatalog{Catalog: c, setActive: func(ctx context.Context, name string) error {
			if err := c.SetActive(ctx, name); err != nil {
				return err
			}
			return errors.New("reply lost")
		}}
	}})
	e.log.append(t, "u1", add("p1", 1))
	e.waitProjected()
	res, err := e.svc.Rebuild(ctxT(t), nil)
	if err != nil {
		t.Fatalf("Rebuild = %v; the switch was recorded, so it must complete", err)
	}
	if got := e.live.Collection(); got != res.Collection {
		t.Fatalf("Live reads %q, want %q", got, res.Collection)
	}
	e.log.append(t, "u1", add("p1", 1))
	e.waitProjected()
	e.assertMatchesLog("u1")
}
