package metrics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acme/cart/internal/metrics"
	"github.com/acme/cart/internal/projection"
)

// Projection is what query-svc gives every projector as its observer.
var _ projection.Observer = (*metrics.Projection)(nil)

// TestProjectionCountsFlushesAndReconnects calls the projector's observer
// hooks (Flushed after each flush that stored events, Resubscribed before
// each restarted subscription) and checks the counters and the flush
// histograms' counts and sums.
func TestProjectionCountsFlushesAndReconnects(t *testing.T) {
	type series = map[string]float64
	type flush struct {
		size, applied, skipped, parked int
		took                           time.Duration
	}
	for _, tc := range []struct {
		name       string
		flushes    []flush
		reconnects int
		events     series
		flushSize  series
		flushTook  series
		reconnect  float64
	}{
		{
			name: "nothing yet: every outcome at zero",
			events: series{
				`cart_projection_events_total{outcome="applied"}`: 0,
				`cart_projection_events_total{outcome="skipped"}`: 0,
				`cart_projection_events_total{outcome="parked"}`:  0,
			},
			flushSize: series{`cart_projection_flush_size_count{}`: 0, `cart_projection_flush_size_sum{}`: 0},
			flushTook: series{`cart_projection_flush_duration_seconds_count{}`: 0, `cart_projection_flush_duration_seconds_sum{}`: 0},
		},
		{
			name:    "applied only",
			flushes: []flush{{size: 3, applied: 3, took: 250 * time.Millisecond}},
			events: series{
				`cart_projection_events_total{outcome="applied"}`: 3,
				`cart_projection_events_total{outcome="skipped"}`: 0,
				`cart_projection_events_total{outcome="parked"}`:  0,
			},
			flushSize: series{`cart_projection_flush_size_count{}`: 1, `cart_projection_flush_size_sum{}`: 3},
			flushTook: series{`cart_projection_flush_duration_seconds_count{}`: 1, `cart_projection_flush_duration_seconds_sum{}`: 0.25},
		},
		{
			name: "redelivered after a reconnect: skipped",
			flushes: []flush{
				{size: 4, applied: 1, skipped: 3, took: 500 * time.Millisecond},
				{size: 2, skipped: 2, took: 250 * time.Millisecond},
			},
			reconnects: 1,
			events: series{
				`cart_projection_events_total{outcome="applied"}`: 1,
				`cart_projection_events_total{outcome="skipped"}`: 5,
				`cart_projection_events_total{outcome="parked"}`:  0,
			},
			flushSize: series{`cart_projection_flush_size_count{}`: 2, `cart_projection_flush_size_sum{}`: 6},
			flushTook: series{`cart_projection_flush_duration_seconds_count{}`: 2, `cart_projection_flush_duration_seconds_sum{}`: 0.75},
			reconnect: 1,
		},
		{
			name: "every outcome, reconnects",
			flushes: []flush{
				{size: 8, applied: 5, skipped: 2, parked: 1, took: 2 * time.Second},
				{size: 1, parked: 1, took: 0},
			},
			reconnects: 3,
			events: series{
				`cart_projection_events_total{outcome="applied"}`: 5,
				`cart_projection_events_total{outcome="skipped"}`: 2,
				`cart_projection_events_total{outcome="parked"}`:  2,
			},
			flushSize: series{`cart_projection_flush_size_count{}`: 2, `cart_projection_flush_size_sum{}`: 9},
			flushTook: series{`cart_projection_flush_duration_seconds_count{}`: 2, `cart_projection_flush_duration_seconds_sum{}`: 2},
			reconnect: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			p := m.Projection()
			for _, f := range tc.flushes {
				p.Flushed(f.size, f.applied, f.skipped, f.parked, f.took)
			}
			for range tc.reconnects {
				p.Resubscribed()
			}
			reg := m.Registry()
			sameSamples(t, "cart_projection_events_total", samples(t, reg, "cart_projection_events_total"), tc.events)
			sameSamples(t, "cart_projection_flush_size",
				only(samples(t, reg, "cart_projection_flush_size"), "cart_projection_flush_size_count", "cart_projection_flush_size_sum"), tc.flushSize)
			sameSamples(t, "cart_projection_flush_duration_seconds",
				only(samples(t, reg, "cart_projection_flush_duration_seconds"),
					"cart_projection_flush_duration_seconds_count", "cart_projection_flush_duration_seconds_sum"), tc.flushTook)
			sameSamples(t, "cart_projection_reconnects_total", samples(t, reg, "cart_projection_reconnects_total"),
				series{`cart_projection_reconnects_total{}`: tc.reconnect})
		})
	}
}

// TestProjectionFlushSizeBuckets: a flush lands in the bucket of its size,
// so that the dashboard's batch size quantiles mean something.
func TestProjectionFlushSizeBuckets(t *testing.T) {
	m := metrics.New()
	p := m.Projection()
	for _, size := range []int{1, 3, 3, 100} {
		p.Flushed(size, size, 0, 0, time.Millisecond)
	}
	have := samples(t, m.Registry(), "cart_projection_flush_size")
	for le, want := range map[string]float64{"1": 1, "2": 1, "4": 3, "64": 3, "128": 4, "512": 4} {
		k := `cart_projection_flush_size_bucket{le="` + le + `"}`
		if have[k] != want {
			t.Errorf("%s = %v, want %v", k, have[k], want)
		}
	}
}

// TestProjectionGaugesReadTheStateAtScrape: each gauge reads its func at
// every gather, and a nil func leaves its gauge out.
func TestProjectionGaugesReadTheStateAtScrape(t *testing.T) {
	type series = map[string]float64
	gauges := []string{
		"cart_projection_checkpoint_commit", "cart_projection_lag_events", "cart_projection_lag_seconds",
		"cart_projection_active", "cart_projection_parked_events",
	}
	for _, tc := range []struct {
		name string
		st   metrics.ProjectionState
		want series
	}{
		{
			name: "behind, active",
			st: metrics.ProjectionState{
				Checkpoint: func() uint64 { return 4096 },
				Lag:        func() (int64, time.Duration) { return 3, 1500 * time.Millisecond },
				Active:     func() bool { return true },
				Parked:     func(context.Context) (int64, error) { return 2, nil },
			},
			want: series{
				`cart_projection_checkpoint_commit{}`: 4096,
				`cart_projection_lag_events{}`:        3,
				`cart_projection_lag_seconds{}`:       1.5,
				`cart_projection_active{}`:            1,
				`cart_projection_parked_events{}`:     2,
			},
		},
		{
			name: "caught up, standby",
			st: metrics.ProjectionState{
				Checkpoint: func() uint64 { return 0 },
				Lag:        func() (int64, time.Duration) { return 0, 0 },
				Active:     func() bool { return false },
				Parked:     func(context.Context) (int64, error) { return 0, nil },
			},
			want: series{
				`cart_projection_checkpoint_commit{}`: 0,
				`cart_projection_lag_events{}`:        0,
				`cart_projection_lag_seconds{}`:       0,
				`cart_projection_active{}`:            0,
				`cart_projection_parked_events{}`:     0,
			},
		},
		{
			name: "lag only",
			st:   metrics.ProjectionState{Lag: func() (int64, time.Duration) { return 1, 2 * time.Second }},
			want: series{`cart_projection_lag_events{}`: 1, `cart_projection_lag_seconds{}`: 2},
		},
		{
			name: "nothing given",
			want: series{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			m.ProjectionGauges(tc.st)
			have := series{}
			for _, g := range gauges {
				for k, v := range samples(t, m.Registry(), g) {
					have[k] = v
				}
			}
			sameSamples(t, "gauges", have, tc.want)
		})
	}
}

// TestProjectionGaugesFollowTheState: the lag gauges move with the
// projector between two scrapes, not only at registration.
func TestProjectionGaugesFollowTheState(t *testing.T) {
	m := metrics.New()
	var (
		events int64
		behind time.Duration
	)
	m.ProjectionGauges(metrics.ProjectionState{Lag: func() (int64, time.Duration) { return events, behind }})
	for _, step := range []struct {
		events int64
		behind time.Duration
	}{{0, 0}, {7, 3 * time.Second}, {1, 250 * time.Millisecond}, {0, 0}} {
		events, behind = step.events, step.behind
		sameSamples(t, "lag", samples(t, m.Registry(), "cart_projection_lag_events"),
			map[string]float64{`cart_projection_lag_events{}`: float64(step.events)})
		sameSamples(t, "lag", samples(t, m.Registry(), "cart_projection_lag_seconds"),
			map[string]float64{`cart_projection_lag_seconds{}`: step.behind.Seconds()})
	}
}

// TestParkedEventsKeepTheLastCountThatWorked: a count that fails reports
// the last one that worked; before any worked, the gauge is absent.
func TestParkedEventsKeepTheLastCountThatWorked(t *testing.T) {
	type count struct {
		n   int64
		err error
	}
	down := errors.New("mongodb down")
	m := metrics.New()
	var next count
	m.ProjectionGauges(metrics.ProjectionState{Parked: func(ctx context.Context) (int64, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the parking lot count runs without a deadline")
		}
		return next.n, next.err
	}})
	const name = "cart_projection_parked_events"
	for i, step := range []struct {
		count
		want map[string]float64
	}{
		{count{0, down}, map[string]float64{}},
		{count{4, nil}, map[string]float64{name + "{}": 4}},
		{count{9, down}, map[string]float64{name + "{}": 4}},
		{count{0, nil}, map[string]float64{name + "{}": 0}},
		{count{1, down}, map[string]float64{name + "{}": 0}},
	} {
		next = step.count
		sameSamples(t, "scrape "+string(rune('1'+i)), samples(t, m.Registry(), name), step.want)
	}
}
