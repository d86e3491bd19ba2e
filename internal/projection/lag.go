package projection

import (
	"context"
	"time"

	"github.com/acme/cart/internal/eventlog"
)

// DefaultHeadInterval is how often a projector reads the head of the log
// for its lag: one small backwards read a second per replica.
const DefaultHeadInterval = time.Second

// HeadSource is implemented by a Source that can also say which cart event
// is the newest in the log. A projector whose Source implements it reads
// the head every Config.HeadInterval, so that its lag grows while its
// subscription is down or its store refuses writes, instead of freezing at
// what was delivered last.
type HeadSource interface {
	// HeadEvent returns the newest cart event of the log. found is false
	// when the adapter saw none (an empty log, or only records of other
	// streams near the head): the projector then keeps what it knew.
	HeadEvent(ctx context.Context) (ev eventlog.Event, found bool, err error)
}

// Lag is how stale the read model is at now: zero when nothing is known to
// be missing from it, else the time since the oldest event it does not
// hold was recorded (see Progress.LagSince). It keeps growing with now
// while the projector makes no progress, so a health check or a metric
// scraped from a snapshot needs no store call.
func (p Progress) Lag(now time.Time) time.Duration {
	if p.LagSince.IsZero() {
		return 0
	}
	return max(now.Sub(p.LagSince), 0)
}

// pendingEvent is a cart event a subscription delivered that no stored
// checkpoint covers yet.
type pendingEvent struct {
	pos     eventlog.Position
	created time.Time
}

// lagState is what the projector knows of the events the read model does
// not hold yet; guarded by Projector.mu. It outlives subscriptions: after a
// drop the same events are redelivered and are not counted twice.
type lagState struct {
	// pending are the delivered, unstored cart events in log order, unique
	// by position. Its length is bounded by the read-ahead and the batch,
	// since the subscription restarts from the checkpoint.
	pending []pendingEvent
	// seen is the furthest position delivered (an event or a server
	// checkpoint) or loaded as the checkpoint: every cart event up to it
	// has reached the projector at some point.
	seen *eventlog.Position
	// head is the newest cart event of the log as last read, if any.
	head    *pendingEvent
	headAt  time.Time // when head was read
	clearAt time.Time // the last head read that found nothing unread; zero after a failed read
}

// advanceSeen moves seen forward to pos.
func (l *lagState) advanceSeen(pos eventlog.Position) {
	if l.seen == nil || l.seen.Less(pos) {
		l.seen = &pos
	}
}

// delivered records a message the subscription delivered.
func (l *lagState) delivered(m eventlog.Message) {
	switch {
	case m.Event != nil:
		ev := m.Event
		if l.seen == nil || l.seen.Less(ev.Position) {
			if !isSystemEvent(*ev) {
				l.pending = append(l.pending, pendingEvent{pos: ev.Position, created: ev.Created})
			}
			l.advanceSeen(ev.Position)
		}
	case m.Checkpoint != nil:
		l.advanceSeen(*m.Checkpoint)
	}
}

// stored drops the pending events that the checkpoint pos covers.
func (l *lagState) stored(pos eventlog.Position) {
	l.advanceSeen(pos)
	n := 0
	for n < len(l.pending) && !pos.Less(l.pending[n].pos) {
		n++
	}
	if n > 0 {
		l.pending = append(l.pending[:0], l.pending[n:]...)
	}
}

// unread tells whether the log's head lies beyond everything delivered.
func (l *lagState) unread() bool {
	return l.head != nil && (l.seen == nil || l.seen.Less(l.head.pos))
}

// headRead records the result of a head read at now.
func (l *lagState) headRead(ev eventlog.Event, found bool, err error, now time.Time) {
	if err != nil {
		// While the log cannot be read nothing confirms the read model is
		// complete; the next known-complete moment must be a fresh one.
		l.clearAt = time.Time{}
		return
	}
	if found {
		l.head = &pendingEvent{pos: ev.Position, created: ev.Created}
		l.headAt = now
	}
	if len(l.pending) == 0 && !l.unread() {
		l.clearAt = now
	}
}

// fill sets the lag fields of pr.
func (l *lagState) fill(pr *Progress) {
	pr.LagEvents = int64(len(l.pending))
	pr.LagSince = time.Time{}
	if len(l.pending) > 0 {
		pr.LagSince = l.pending[0].created
	}
	if l.unread() {
		pr.LagEvents++
		if len(l.pending) == 0 {
			// The oldest missing event is unknown: it was recorded after
			// the last read that found nothing missing and no later than
			// the head. The earlier of the two errs on the stale side by
			// at most one HeadInterval.
			pr.LagSince = l.head.created
			if !l.clearAt.IsZero() && l.clearAt.Before(pr.LagSince) {
				pr.LagSince = l.clearAt
			}
		}
	}
	if l.head != nil {
		h := l.head.pos
		pr.Head = &h
	}
	pr.HeadReadAt = l.headAt
}

// followHead reads the head of the log every interval until ctx ends.
func (p *Projector) followHead(ctx context.Context, hs HeadSource) {
	t := time.NewTicker(p.cfg.HeadInterval)
	defer t.Stop()
	for {
		p.readHead(ctx, hs)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readHead reads the head once, bounded by the interval so that a hung
// store does not stall the next reads.
func (p *Projector) readHead(ctx context.Context, hs HeadSource) {
	rctx, cancel := context.WithTimeout(ctx, max(p.cfg.HeadInterval, time.Second))
	defer cancel()
	// The read shows the log as of some moment after it started: only
	// its start is sure to be complete.
	now := p.now()
	ev, found, err := hs.HeadEvent(rctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		p.log.Debug("projection cannot read the head of the log", "err", err)
	}
	p.update(func(*Progress) { p.lag.headRead(ev, found, err, now) })
}
