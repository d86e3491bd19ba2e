package admin

import (
	"log/slog"
	"sync"
	"time"

	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

// DefaultProgressInterval is how often a running operation reports progress.
const DefaultProgressInterval = 500 * time.Millisecond

// progressLogEvery spaces the progress lines in the log: the caller's
// stream gets every report, the log one every few seconds (and the first
// and the last).
const progressLogEvery = 5 * time.Second

// rateSmoothing weighs the latest interval's rate against the earlier ones
// (exponential moving average), so that events/s and the ETA do not jump
// with every batch.
const rateSmoothing = 0.3

// Progress tells how far a replay of the event log has come.
type Progress struct {
	// EventsProcessed counts the cart events replayed so far.
	EventsProcessed int64
	// EventsPerSecond is the recent throughput.
	EventsPerSecond float64
	// Position is the $all position stored so far (zero before any).
	Position eventlog.Position
	// Target is the head of the log when the operation started.
	Target eventlog.Position
	// ETA estimates the time left to reach Target from the recent rate of
	// progress through the log's positions; negative when unknown (no
	// progress measured yet).
	ETA time.Duration
}

// meter turns successive projector progress snapshots into Progress.
type meter struct {
	target    eventlog.Position
	last      time.Time
	lastCount int64
	lastPos   uint64
	evRate    float64 // events per second
	posRate   float64 // commit positions per second
	sampled   bool
}

func newMeter(now time.Time, target eventlog.Position) *meter {
	return &meter{target: target, last: now}
}

// sample measures the rates since the previous sample.
func (m *meter) sample(now time.Time, pr projection.Progress) Progress {
	var pos eventlog.Position
	if pr.Checkpoint != nil {
		pos = *pr.Checkpoint
	}
	if dt := now.Sub(m.last).Seconds(); dt > 0 {
		ev := float64(pr.EventsProcessed-m.lastCount) / dt
		ps := float64(pos.Commit-min(m.lastPos, pos.Commit)) / dt
		if m.sampled {
			ev = rateSmoothing*ev + (1-rateSmoothing)*m.evRate
			ps = rateSmoothing*ps + (1-rateSmoothing)*m.posRate
		}
		m.evRate, m.posRate, m.sampled = ev, ps, true
		m.last, m.lastCount, m.lastPos = now, pr.EventsProcessed, pos.Commit
	}
	out := Progress{
		EventsProcessed: pr.EventsProcessed,
		EventsPerSecond: m.evRate,
		Position:        pos,
		Target:          m.target,
		ETA:             -1,
	}
	switch {
	case pos.Commit >= m.target.Commit:
		out.ETA = 0
	case m.posRate > 0:
		out.ETA = time.Duration(float64(m.target.Commit-pos.Commit) / m.posRate * float64(time.Second))
	}
	return out
}

// reporter samples a projector every interval, hands each Progress to
// report and logs it. report is only ever called from one goroutine at a
// time: the reporter's own, then (in finish) the caller's.
type reporter struct {
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	m        *meter
	p        *projection.Projector
	report   func(Progress)
	log      *slog.Logger
	op       string
	logged   time.Time // when progress was last logged
}

// startReporter reports once at once (so that a caller sees the target
// before the first interval) and then every interval until finish.
func startReporter(op string, p *projection.Projector, target eventlog.Position, interval time.Duration,
	report func(Progress), log *slog.Logger) *reporter {
	r := &reporter{
		stop: make(chan struct{}), done: make(chan struct{}),
		m: newMeter(time.Now(), target), p: p, report: report, log: log, op: op,
	}
	if r.report == nil {
		r.report = func(Progress) {}
	}
	r.emit(true)
	go func() {
		defer close(r.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.emit(false)
			}
		}
	}()
	return r
}

func (r *reporter) emit(log bool) Progress {
	now := time.Now()
	pr := r.m.sample(now, r.p.Progress())
	if log || now.Sub(r.logged) >= progressLogEvery {
		r.logged = now
		r.log.Info(r.op+" progress", "events_processed", pr.EventsProcessed,
			"events_per_second", int64(pr.EventsPerSecond), "position", pr.Position.String(),
			"target", pr.Target.String(), "eta", etaAttr(pr.ETA))
	}
	r.report(pr)
	return pr
}

// halt stops the periodic reports without a last one (the operation failed).
func (r *reporter) halt() {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
}

// finish stops the periodic reports and reports the final progress.
func (r *reporter) finish() Progress {
	r.halt()
	return r.emit(true)
}

func etaAttr(d time.Duration) string {
	if d < 0 {
		return "unknown"
	}
	return d.Round(time.Second).String()
}
