package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// parkedCountTimeout bounds the parking lot count a scrape runs, so that a
// slow MongoDB slows the scrape by at most this much.
const parkedCountTimeout = time.Second

// ProjectionState is how the projector's gauges read its state at scrape
// time; query-svc wires it to the live projector. A nil func leaves its
// gauge out.
type ProjectionState struct {
	// Checkpoint is the commit position of the live projector's stored
	// checkpoint (0 before it has one).
	Checkpoint func() uint64
	// Lag is how far the read model is behind the log: in events, a lower
	// bound (the events delivered but not stored yet, plus one when the
	// head of the log lies beyond them, since positions cannot count the
	// events in between), and in time (how old the oldest event not
	// applied yet is); zero when caught up.
	Lag func() (events int64, behind time.Duration)
	// Parked counts the events in the parking lot now (what an operator
	// has to replay or dismiss), not those parked since start.
	Parked func(ctx context.Context) (int64, error)
	// Active tells whether this replica runs the projector (holds the
	// projector lease), so that the alerts read the lag of the one that
	// matters.
	Active func() bool
}

// Projection counts what the projector does. It implements the
// projector's observer hook (projection.Observer) without this package
// importing the projector.
type Projection struct {
	events        *prometheus.CounterVec
	flushSize     prometheus.Histogram
	flushDuration prometheus.Histogram
	reconnects    prometheus.Counter
}

// Outcomes of cart_projection_events_total.
const (
	EventApplied = "applied"
	EventSkipped = "skipped"
	EventParked  = "parked"
)

// Projection registers the read side's counters and histograms and
// returns the observer to give every projector. Call it once per Metrics.
func (m *Metrics) Projection() *Projection {
	p := &Projection{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_projection_events_total",
			Help: "Events the projector stored, by outcome: applied (changed a document), skipped (redelivered, already reflected), parked (could not be applied).",
		}, []string{"outcome"}),
		flushSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cart_projection_flush_size",
			Help:    "Events per flush of the projector's batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cart_projection_flush_duration_seconds",
			Help:    "How long a flush took: documents, parked events and checkpoint written.",
			Buckets: latencyBuckets,
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cart_projection_reconnects_total",
			Help: "Subscriptions to the event log that failed and were restarted from the checkpoint.",
		}),
	}
	for _, o := range []string{EventApplied, EventSkipped, EventParked} {
		p.events.WithLabelValues(o) // a zero series, so rates start at 0
	}
	m.reg.MustRegister(p.events, p.flushSize, p.flushDuration, p.reconnects)
	return p
}

// ProjectionGauges registers the gauges that read st at scrape time: a
// second step, since they read the projector that the observer of
// Projection is given to. Call it once per Metrics.
func (m *Metrics) ProjectionGauges(st ProjectionState) {
	if st.Checkpoint != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cart_projection_checkpoint_commit",
			Help: "Commit position of the live projector's stored checkpoint in the event log.",
		}, func() float64 { return float64(st.Checkpoint()) }))
	}
	if st.Lag != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "cart_projection_lag_events",
				Help: "At least this many cart events in the log are not reflected by the read model yet: those delivered to the projector but not stored, plus one when the head of the log lies beyond them (a lower bound: the events not delivered yet count as one in all); 0 when caught up.",
			}, func() float64 { n, _ := st.Lag(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "cart_projection_lag_seconds",
				Help: "How old the oldest event the read model does not reflect yet is; 0 when caught up.",
			}, func() float64 { _, d := st.Lag(); return d.Seconds() }),
		)
	}
	if st.Active != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cart_projection_active",
			Help: "1 while this replica runs the projector, else 0.",
		}, func() float64 {
			if st.Active() {
				return 1
			}
			return 0
		}))
	}
	if st.Parked != nil {
		m.reg.MustRegister(&parkedCollector{count: st.Parked, desc: prometheus.NewDesc(
			"cart_projection_parked_events", "Events in the parking lot now, waiting to be replayed or dismissed.", nil, nil)})
	}
}

// Flushed records one flush that stored events: how many, how they came
// out, and how long the flush took.
func (p *Projection) Flushed(size, applied, skipped, parked int, took time.Duration) {
	p.flushSize.Observe(float64(size))
	p.flushDuration.Observe(took.Seconds())
	p.events.WithLabelValues(EventApplied).Add(float64(applied))
	p.events.WithLabelValues(EventSkipped).Add(float64(skipped))
	p.events.WithLabelValues(EventParked).Add(float64(parked))
}

// Resubscribed records a failed subscription that will be restarted.
func (p *Projection) Resubscribed() { p.reconnects.Inc() }

// parkedCollector counts the parking lot at scrape time. A count that
// fails reports the last one that worked, so that parked events do not
// drop out of the alert while MongoDB hiccups; before any worked, nothing.
type parkedCollector struct {
	count func(ctx context.Context) (int64, error)
	desc  *prometheus.Desc

	mu    sync.Mutex
	last  int64
	known bool
}

// Describe implements prometheus.Collector.
func (c *parkedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector: one count per scrape.
func (c *parkedCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), parkedCountTimeout)
	defer cancel()
	n, err := c.count(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.last, c.known = n, true
	}
	if c.known {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.last))
	}
}
