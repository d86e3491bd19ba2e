package projection

import (
	"context"
	"fmt"
	"time"

	"github.com/acme/cart/internal/eventlog"
)

// batch is what the projector holds between flushes: the events received
// and the furthest position seen (an event's or a server checkpoint's).
type batch struct {
	entries []entry
	pos     *eventlog.Position // furthest position received; nil before any
	stored  *eventlog.Position // the checkpoint last loaded or stored
}

func (b *batch) advance(pos eventlog.Position) {
	if b.pos == nil || b.pos.Less(pos) {
		b.pos = &pos
	}
}

// dirty tells whether a flush has anything to store.
func (b *batch) dirty() bool {
	return len(b.entries) > 0 || (b.pos != nil && (b.stored == nil || b.stored.Less(*b.pos)))
}

// checkpointDue tells whether the checkpoint was last stored
// CheckpointInterval ago or more.
func (p *Projector) checkpointDue() bool {
	return p.cfg.CheckpointInterval < 0 || p.now().Sub(p.savedAt) >= p.cfg.CheckpointInterval
}

// flush stores the batch: the documents first (and tells the Notifier),
// then the parked events, then the checkpoint, if save or if it is due
// (see Config.CheckpointInterval). A crash between those steps only causes
// redelivery, which the version guard absorbs. It returns how many events
// it stored.
func (p *Projector) flush(ctx context.Context, b *batch, save bool) (_ int, err error) {
	if !b.dirty() || len(b.entries) == 0 && !save && !p.checkpointDue() {
		return 0, nil
	}
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	ctx, span, start := p.startFlush(ctx, b)
	defer func() { endFlush(span, err) }()
	var states []*cartState
	if len(b.entries) > 0 {
		// Before the write, not after: a write that fails for us (a
		// cancelled context, a lost reply) may still have landed.
		last := b.entries[len(b.entries)-1].ev.Position
		p.update(func(pr *Progress) {
			if pr.LastEvent == nil || pr.LastEvent.Less(last) {
				pr.LastEvent = &last
			}
		})
		var err error
		if states, err = p.storeCarts(ctx, b.entries); err != nil {
			return 0, err
		}
		// The documents are readable now: wake readers before the slower
		// bookkeeping below.
		if p.cfg.Notifier != nil {
			for _, s := range states {
				p.cfg.Notifier.NotifyDoc(s.doc)
			}
		}
		p.traceEvents(ctx, span, start, states)
		for _, s := range states {
			for _, pk := range s.parks {
				p.log.Error("projection cannot apply an event; cart marked stale",
					"stream", pk.ev.StreamID, "revision", pk.ev.Revision, "type", pk.ev.Type,
					"event_id", pk.ev.EventID, "position", pk.ev.Position.String(), "err", pk.cause)
				if err := p.cfg.Parker.Park(ctx, pk.ev, pk.cause); err != nil {
					return 0, fmt.Errorf("park event %s@%d: %w", pk.ev.StreamID, pk.ev.Revision, err)
				}
			}
		}
	}
	if b.pos != nil && (b.stored == nil || b.stored.Less(*b.pos)) && (save || p.checkpointDue()) {
		if err := p.cfg.Store.SaveCheckpoint(ctx, p.cfg.Name, *b.pos); err != nil {
			return 0, fmt.Errorf("save checkpoint: %w", err)
		}
		b.stored = b.pos
		p.savedAt = p.now()
	}
	n := len(b.entries)
	b.entries = b.entries[:0]

	var applied, skipped, parked int64
	for _, s := range states {
		applied += int64(s.applied)
		skipped += int64(s.skipped)
		parked += int64(len(s.parks))
	}
	var stored *eventlog.Position
	if b.stored != nil {
		cp := *b.stored
		stored = &cp
	}
	p.update(func(pr *Progress) {
		if stored != nil {
			pr.Checkpoint = stored
			p.lag.stored(*stored)
		}
		pr.EventsProcessed += int64(n)
		pr.EventsApplied += applied
		pr.EventsSkipped += skipped
		pr.EventsParked += parked
	})
	if n > 0 {
		p.cfg.Observer.Flushed(n, int(applied), int(skipped), int(parked), time.Since(start))
		p.log.Debug("projection flushed", "events", n, "carts", len(states), "checkpoint", positionAttr(stored))
	}
	return max(n, 1), nil
}

// storeCarts applies the entries to their carts' documents and writes the
// documents that changed, one write per cart however many of its events
// the batch holds. A cart whose document the cache knows, at the version
// right before its first event here, is applied to the cached document;
// a cart whose first event here is its first event ever (revision 0) is
// presumed to have no document and inserted without a read; the others
// are read in one LoadCarts. A document that another writer
// moved on since it was read (or cached) is read again and the user's
// events re-applied to it, so the events the other writer had not applied
// yet are not lost.
func (p *Projector) storeCarts(ctx context.Context, entries []entry) ([]*cartState, error) {
	byUser := make(map[string][]entry)
	var users []string
	for _, en := range entries {
		u := en.ev.UserID
		if _, ok := byUser[u]; !ok {
			users = append(users, u)
		}
		byUser[u] = append(byUser[u], en)
	}
	states := make(map[string]*cartState, len(users))
	pending := users
	for round := 0; len(pending) > 0; round++ {
		if round == maxConflictRounds {
			p.cache.drop(pending...)
			return nil, fmt.Errorf("write carts: documents of %d users kept changing under us (e.g. %q)", len(pending), pending[0])
		}
		// Only the first round trusts the cache: a conflict means the
		// document moved under us, so it is read.
		known := map[string]CartDoc{}
		absent := map[string]bool{}
		missing := pending
		if round == 0 {
			missing = nil
			for _, u := range pending {
				first := byUser[u][0].ev.Revision
				// A cached document decides only the common case, the
				// next revision; a redelivery or a gap is decided on what
				// the store holds.
				if d, ok := p.cache.get(u); ok && first == d.Version+1 {
					known[u] = d
				} else if first == 0 {
					// The cart's first event: its document cannot exist
					// unless this event was projected before (a
					// redelivery). Presumed absent, it is inserted without
					// a read; the unique _id refuses the insert if it does
					// exist, and the next round reads it.
					absent[u] = true
				} else {
					missing = append(missing, u)
				}
			}
		}
		docs := map[string]CartDoc{}
		if len(missing) > 0 {
			var err error
			if docs, err = p.cfg.Store.LoadCarts(ctx, missing); err != nil {
				return nil, fmt.Errorf("load carts: %w", err)
			}
		}
		var writes []CartWrite
		for _, u := range pending {
			doc, ok := docs[u]
			cached := false
			if d, hit := known[u]; hit {
				doc, ok, cached = d, true, true
			}
			if absent[u] {
				doc, ok = CartDoc{}, false
			}
			s := newCartState(u, doc, ok, byUser[u])
			s.run()
			states[u] = s
			if s.changed {
				w := s.write()
				w.Known = cached
				writes = append(writes, w)
			}
		}
		if len(writes) == 0 {
			break
		}
		conflicts, err := p.cfg.Store.WriteCarts(ctx, writes)
		if err != nil {
			// Any of them may or may not have landed.
			for _, w := range writes {
				p.cache.drop(w.Doc.UserID)
			}
			return nil, fmt.Errorf("write carts: %w", err)
		}
		if len(conflicts) > 0 {
			p.log.Debug("projection write conflicts; re-reading", "carts", len(conflicts), "round", round)
			p.cache.drop(conflicts...)
		}
		pending = conflicts
	}
	out := make([]*cartState, 0, len(users))
	for _, u := range users {
		s := states[u]
		// Every state is now what the store holds: written, or unchanged
		// from what was read.
		if s.stored || s.changed {
			p.cache.put(s.doc)
		}
		out = append(out, s)
	}
	return out, nil
}

// nopParker is the Parker used when none is configured: the projector has
// already logged the event at Error level and marked its cart stale, which
// is all that can be done without a parking lot.
type nopParker struct{}

func (nopParker) Park(context.Context, eventlog.Event, error) error { return nil }
