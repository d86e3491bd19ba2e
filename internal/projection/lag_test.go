package projection

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// fakeClock is a settable clock for the lag's head reads.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestProgressLag(t *testing.T) {
	t.Parallel()
	since := time.Unix(1700000000, 0)
	tests := []struct {
		name  string
		since time.Time
		now   time.Time
		want  time.Duration
	}{
		{"nothing missing", time.Time{}, since, 0},
		{"missing", since, since.Add(90 * time.Second), 90 * time.Second},
		{"clock behind the store", since, since.Add(-time.Second), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Progress{LagSince: tt.since}).Lag(tt.now); got != tt.want {
				t.Errorf("Lag = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLagCountsDeliveredEventsUntilStored keeps the store from writing: the
// delivered events count as lag, once each however often the projector
// resubscribes, and the lag starts at the oldest of them; once the store
// writes again the lag is zero.
func TestLagCountsDeliveredEventsUntilStored(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	log := newFakeLog()
	first := b.event("u1", add("p1", 1))
	log.addEvents(first)
	store := newFakeStore()
	p := start(t, Config{Source: log, Store: store, HeadInterval: time.Millisecond})
	waitFor(t, p, "first event", storedThrough(first.Position))

	var down sync.Mutex
	broken := true
	store.mu.Lock()
	store.fail = func(op string) error {
		down.Lock()
		defer down.Unlock()
		if broken && op == "write" {
			return fmt.Errorf("write: %w", cart.ErrUnavailable)
		}
		return nil
	}
	store.mu.Unlock()
	evs := []eventlog.Event{b.event("u1", add("p2", 1)), b.event("u2", add("p1", 1)), b.event("u1", add("p3", 1))}
	log.addEvents(evs...)
	base := p.Progress().Reconnects
	waitFor(t, p, "redeliveries", func(pr Progress) bool { return pr.Reconnects >= base+3 })
	pr := p.Progress()
	if pr.LagEvents != int64(len(evs)) || !pr.LagSince.Equal(evs[0].Created) {
		t.Fatalf("lag while the store is down = %d events since %v; want %d since %v", pr.LagEvents, pr.LagSince, len(evs), evs[0].Created)
	}
	if got := pr.Lag(evs[0].Created.Add(time.Minute)); got != time.Minute {
		t.Errorf("Lag a minute after the oldest missing event = %v", got)
	}

	down.Lock()
	broken = false
	down.Unlock()
	waitFor(t, p, "no lag", func(pr Progress) bool {
		return storedThrough(evs[2].Position)(pr) && pr.LagEvents == 0 && pr.LagSince.IsZero()
	})
}

// TestLagFollowsTheHeadWhileNothingIsDelivered has events in the log that
// the subscription does not deliver: the head read makes them count, from
// the last moment the read model was known complete, or from the head's
// own time once a failed read leaves that moment unknown.
func TestLagFollowsTheHeadWhileNothingIsDelivered(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	log := newFakeLog()
	first := b.event("u1", add("p1", 1))
	log.addEvents(first)
	late := b.event("u2", add("p1", 1))
	clearAt := late.Created.Add(-5 * time.Second)
	clock := &fakeClock{t: clearAt}
	p, err := New(Config{Source: log, Store: newFakeStore(), HeadInterval: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.now = clock.now
	run(t, p)
	waitFor(t, p, "caught up and confirmed by a head read", func(pr Progress) bool {
		p.mu.Lock()
		confirmed := p.lag.clearAt.Equal(clearAt)
		p.mu.Unlock()
		return storedThrough(first.Position)(pr) && pr.Head != nil && *pr.Head == first.Position && confirmed
	})
	if pr := p.Progress(); pr.LagEvents != 0 || pr.Lag(clearAt.Add(time.Hour)) != 0 {
		t.Fatalf("caught up: lag %d events, %v", pr.LagEvents, pr.Lag(clearAt.Add(time.Hour)))
	}

	log.addAhead(late)
	clock.set(late.Created.Add(10 * time.Second))
	waitFor(t, p, "the head beyond what was delivered", func(pr Progress) bool { return pr.LagEvents == 1 })
	pr := p.Progress()
	if !pr.LagSince.Equal(clearAt) || *pr.Head != late.Position {
		t.Fatalf("lag since %v, head %v; want since the last complete moment %v, head %v", pr.LagSince, pr.Head, clearAt, late.Position)
	}
	if got := pr.Lag(clearAt.Add(time.Hour)); got != time.Hour {
		t.Errorf("Lag an hour later = %v, want it to keep growing", got)
	}

	log.setHeadErr(errors.New("store down"))
	waitFor(t, p, "the head's time after a failed read", func(pr Progress) bool { return pr.LagSince.Equal(late.Created) })
	log.setHeadErr(nil)
	if pr := p.Progress(); pr.LagEvents != 1 {
		t.Errorf("lag after a failed read = %d events, want the known head still counted", pr.LagEvents)
	}

	log.release()
	waitFor(t, p, "no lag once delivered and stored", func(pr Progress) bool {
		return storedThrough(late.Position)(pr) && pr.LagEvents == 0 && pr.LagSince.IsZero()
	})
}
