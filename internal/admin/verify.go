package admin

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readside"
)

// VerifyResult lists what differs between the live read model and a replay.
type VerifyResult struct {
	// CartsChecked counts the users found in the live collection or the replay.
	CartsChecked int64
	// Differences holds every cart that differs, in user ID order.
	Differences []Difference
	Duration    time.Duration
}

// Difference is one cart whose live document is wrong.
type Difference struct {
	UserID string
	// Summary says what differs, e.g. "item sku-1 quantity: live 3,
	// replay 2"; several findings are joined with "; ".
	Summary string
	// LiveVersion is the live document's version; -1 when it is missing.
	LiveVersion int64
	// ReplayVersion is the version the replay reached; -1 for none.
	ReplayVersion int64
}

// Verify replays the log from the start into a scratch collection and
// compares it with the live collection, cart by cart:
//
//   - The scratch projector runs until it has caught up with the head of
//     the log taken at the start, then stops; E is the position of the last
//     event it stored. The live projector is then awaited until it has
//     stored everything up to E too. Both have seen every event up to E.
//   - Documents equal in the two collections are right.
//   - Otherwise the user's stream decides, so that writes during the
//     verification never produce a false report: the live document must
//     equal the fold of the stream up to the live document's own version,
//     must have reached every event up to E (unless stuck behind an event
//     that cannot be applied, and then flagged stale), and must be stale
//     only when the next event cannot be applied.
//
// The scratch collection is dropped at the end, also on failure. report
// receives progress (nil: logged only).
func (s *Service) Verify(ctx context.Context, report func(Progress)) (VerifyResult, error) {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return VerifyResult{}, err
	}
	defer end()
	start := time.Now()
	live, cat := s.cfg.Live, s.cfg.Live.Catalog()
	if cur, _ := live.Current(); cur == nil {
		return VerifyResult{}, fmt.Errorf("verify: %w", readside.ErrNotOpen)
	}
	head, err := s.cfg.Events.HeadPosition(ctx)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify: %w", err)
	}
	target := eventlog.Position{Commit: head.Commit, Prepare: head.Prepare}
	name := collectionName("verify", start)
	log := s.log.With("op", "verify", "collection", name)
	log.Info("read model verification started", "live", live.Collection(), "target", target.String())

	if err := cat.Drop(ctx, name); err != nil {
		return VerifyResult{}, fmt.Errorf("verify: %w", err)
	}
	scratch := live.Open(name)
	vp, stopV, err := s.runProjector(name, scratch, false)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify: %w", err)
	}
	defer func() {
		stopV()
		s.dropQuietly(ctx, name)
	}()
	rep := startReporter("read model verification", vp, target, s.cfg.ProgressInterval, report, log)
	defer rep.halt()
	if err := vp.WaitUntil(ctx, func(pr projection.Progress) bool {
		return pr.CaughtUp && reached(pr.Checkpoint, target)
	}); err != nil {
		return VerifyResult{}, fmt.Errorf("verify: catching up: %w", err)
	}
	stopV()
	rep.finish()
	upTo := vp.Progress().LastEvent

	cur, lp := live.Current()
	if upTo != nil && lp != nil {
		if err := lp.WaitUntil(ctx, func(pr projection.Progress) bool { return reached(pr.Checkpoint, *upTo) }); err != nil {
			return VerifyResult{}, fmt.Errorf("verify: waiting for the live projector to reach %v: %w", *upTo, err)
		}
	}
	res, err := s.compare(ctx, cur, scratch, upTo)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify: %w", err)
	}
	res.Duration = time.Since(start)
	log.Info("read model verification done", "carts_checked", res.CartsChecked,
		"differences", len(res.Differences), "duration", res.Duration)
	for _, d := range res.Differences {
		log.Warn("read model difference", "user", d.UserID, "live_version", d.LiveVersion,
			"replay_version", d.ReplayVersion, "difference", d.Summary)
	}
	return res, nil
}

// compare merges the two collections' scans (both in user ID order) and
// judges every user found in either.
func (s *Service) compare(ctx context.Context, cur *readside.Active, replay readside.CartStore, upTo *eventlog.Position) (VerifyResult, error) {
	// Reads of the live collection hold it against retirement, like GetCart.
	liveStore, unpin := cur.Pin()
	defer unpin()
	nextLive, stopLive := iter.Pull2(liveStore.ScanCarts(ctx))
	defer stopLive()
	nextReplay, stopReplay := iter.Pull2(replay.ScanCarts(ctx))
	defer stopReplay()

	pull := func(next func() (projection.CartDoc, error, bool)) (*projection.CartDoc, error) {
		d, err, ok := next()
		if !ok {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &d, nil
	}
	var res VerifyResult
	l, err := pull(nextLive)
	if err != nil {
		return res, err
	}
	r, err := pull(nextReplay)
	if err != nil {
		return res, err
	}
	for l != nil || r != nil {
		var ld, rd *projection.CartDoc
		switch {
		case r == nil || (l != nil && l.UserID < r.UserID):
			ld = l
		case l == nil || r.UserID < l.UserID:
			rd = r
		default:
			ld, rd = l, r
		}
		user := ld
		if user == nil {
			user = rd
		}
		res.CartsChecked++
		if ld == nil || rd == nil || !sameDoc(*ld, *rd) {
			diff, err := s.judge(ctx, user.UserID, ld, rd, upTo)
			if err != nil {
				return res, err
			}
			if diff != nil {
				res.Differences = append(res.Differences, *diff)
			}
		}
		if ld != nil {
			if l, err = pull(nextLive); err != nil {
				return res, err
			}
		}
		if rd != nil {
			if r, err = pull(nextReplay); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}
