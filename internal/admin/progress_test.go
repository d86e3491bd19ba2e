package admin

import (
	"testing"
	"time"

	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

func TestMeter(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	at := func(commit uint64) *eventlog.Position { return &eventlog.Position{Commit: commit, Prepare: commit} }
	m := newMeter(start, eventlog.Position{Commit: 10_000})

	first := m.sample(start, projection.Progress{})
	if first.ETA >= 0 || first.EventsPerSecond != 0 || first.Target.Commit != 10_000 {
		t.Fatalf("before any time passed: %+v; want an unknown ETA", first)
	}
	// 100 events and 2,000 positions in one second: 8,000 left at 2,000/s.
	p := m.sample(start.Add(time.Second), projection.Progress{EventsProcessed: 100, Checkpoint: at(2000)})
	if p.EventsPerSecond != 100 || p.ETA != 4*time.Second || p.Position.Commit != 2000 || p.EventsProcessed != 100 {
		t.Fatalf("after 1 s: %+v; want 100 events/s and 4 s left", p)
	}
	// The next second is twice as fast: the rates move 30% of the way.
	p = m.sample(start.Add(2*time.Second), projection.Progress{EventsProcessed: 300, Checkpoint: at(6000)})
	if p.EventsPerSecond != 130 || p.ETA != 4000*time.Second/2600 {
		t.Fatalf("after 2 s: %+v; want 130 events/s and 4000/2600 s left", p)
	}
	// Past the target: nothing left.
	p = m.sample(start.Add(3*time.Second), projection.Progress{EventsProcessed: 500, Checkpoint: at(12_000)})
	if p.ETA != 0 {
		t.Fatalf("past the target: %+v; want ETA 0", p)
	}
}
