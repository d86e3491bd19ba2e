package readside

import (
	"errors"
	"testing"
	"time"

	"github.com/acme/cart/internal/eventlog"
)

func TestStandbyProgress(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	pos := func(c uint64) *eventlog.Position { return &eventlog.Position{Commit: c, Prepare: c} }
	head := func(c uint64, created time.Time) eventlog.Event {
		return eventlog.Event{Position: *pos(c), Created: created}
	}
	type reading struct {
		cp      *eventlog.Position
		ev      eventlog.Event
		found   bool
		headErr error
		at      time.Time
	}
	tests := []struct {
		name       string
		given      []reading
		wantCaught bool
		wantLag    time.Duration // at t0+60s
		wantEvents int64
	}{
		{name: "empty log: caught up", given: []reading{{at: t0}}, wantCaught: true},
		{name: "checkpoint at the head: caught up, no lag",
			given: []reading{{cp: pos(10), ev: head(10, t0), found: true, at: t0}}, wantCaught: true},
		{name: "never complete: behind since the head's time",
			given:   []reading{{cp: pos(5), ev: head(10, t0.Add(20*time.Second)), found: true, at: t0.Add(30 * time.Second)}},
			wantLag: 40 * time.Second, wantEvents: 1},
		{name: "complete, then behind: since the last complete reading when earlier",
			given: []reading{
				{cp: pos(10), ev: head(10, t0), found: true, at: t0.Add(10 * time.Second)},
				{cp: pos(10), ev: head(12, t0.Add(50*time.Second)), found: true, at: t0.Add(55 * time.Second)},
			},
			wantCaught: true, wantLag: 50 * time.Second, wantEvents: 1},
		{name: "lag keeps its start while the holder stays behind",
			given: []reading{
				{cp: pos(5), ev: head(10, t0), found: true, at: t0.Add(time.Second)},
				{cp: pos(8), ev: head(11, t0.Add(40*time.Second)), found: true, at: t0.Add(41 * time.Second)},
			},
			wantLag: 60 * time.Second, wantEvents: 1},
		{name: "a failed head read keeps what was known",
			given: []reading{
				{cp: pos(10), ev: head(10, t0), found: true, at: t0},
				{headErr: errors.New("down"), at: t0.Add(30 * time.Second)},
			},
			wantCaught: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s standbyProgress
			for _, r := range tt.given {
				s.record(r.cp, nil, r.ev, r.found, r.headErr, r.at)
			}
			pr := s.snapshot()
			if pr.CaughtUp != tt.wantCaught {
				t.Errorf("CaughtUp = %v, want %v", pr.CaughtUp, tt.wantCaught)
			}
			if got := pr.Lag(t0.Add(60 * time.Second)); got != tt.wantLag {
				t.Errorf("Lag = %v, want %v", got, tt.wantLag)
			}
			if pr.LagEvents != tt.wantEvents {
				t.Errorf("LagEvents = %d, want %d", pr.LagEvents, tt.wantEvents)
			}
		})
	}
}
