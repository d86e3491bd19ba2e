package readside

import (
	"context"
	"sync"
	"time"

	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

// standbyProgress is what a replica without the projector lease knows of
// the holder's progress: health and the lag metrics need it there too,
// since such a replica serves GetCart from the documents the holder
// writes. It compares the active collection's stored checkpoint with the
// newest cart event of the log, both read every projection head interval,
// so that its lag is the read model's lag, whoever projects it. Safe for
// concurrent use.
type standbyProgress struct {
	mu      sync.Mutex
	pr      projection.Progress
	clearAt time.Time // the last read that found nothing missing; zero after a failed read
}

// snapshot is the progress as last read.
func (s *standbyProgress) snapshot() projection.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pr
}

// record folds one reading of the checkpoint (cp) and the head (ev, found)
// taken at now into the progress. A failed read of either keeps what was
// known, but no longer counts as a moment the read model was complete.
func (s *standbyProgress) record(cp *eventlog.Position, cpErr error, ev eventlog.Event, found bool, headErr error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cpErr != nil || headErr != nil {
		s.clearAt = time.Time{}
		if headErr != nil {
			s.pr.LastError = headErr.Error()
		} else {
			s.pr.LastError = cpErr.Error()
		}
		return
	}
	s.pr.LastError = ""
	s.pr.Checkpoint = cp
	if found {
		h := ev.Position
		s.pr.Head, s.pr.HeadReadAt = &h, now
	}
	behind := s.pr.Head != nil && (cp == nil || cp.Less(*s.pr.Head))
	if !behind {
		s.pr.CaughtUp, s.pr.LagEvents, s.pr.LagSince = true, 0, time.Time{}
		s.clearAt = now
		return
	}
	// The oldest missing event is unknown: it was recorded after the last
	// reading that found nothing missing and no later than the head; the
	// earlier of the two errs on the stale side, as the projector's own
	// estimate does. A lower bound of one event is all positions can tell.
	s.pr.LagEvents = 1
	if s.pr.LagSince.IsZero() {
		since := ev.Created
		if !found || (!s.clearAt.IsZero() && s.clearAt.Before(since)) {
			since = s.clearAt
		}
		if since.IsZero() {
			since = now
		}
		s.pr.LagSince = since
	}
	// CaughtUp stays as it was: a standby that saw the read model complete
	// once has caught up; falling behind later is what the lag tells.
}

// followStandby keeps the standby progress current while this replica
// does not run the projector, until ctx ends.
func (l *Live) followStandby(ctx context.Context) {
	hs, ok := l.cfg.Projection.Source.(projection.HeadSource)
	if !ok {
		return
	}
	t := time.NewTicker(projection.DefaultHeadInterval)
	defer t.Stop()
	for {
		if st := l.cur.Load(); st != nil && !l.Active() {
			rctx, cancel := context.WithTimeout(ctx, max(projection.DefaultHeadInterval, time.Second))
			now := time.Now()
			// The checkpoint first: a head read after it can only make the
			// read model look further behind, never complete too early.
			cp, cpErr := st.store.LoadCheckpoint(rctx, st.name)
			ev, found, headErr := hs.HeadEvent(rctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			l.standby.record(cp, cpErr, ev, found, headErr, now)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
