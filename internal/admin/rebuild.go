package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readside"
)

// switchReadTimeout bounds re-reading the catalog after a failed switch.
const switchReadTimeout = 10 * time.Second

// RebuildResult describes the read model in use after a rebuild.
type RebuildResult struct {
	// Collection now holds the carts.
	Collection string
	// Previous is the collection that was in use before; it is dropped in
	// the background DropDelay after the switch, unless Close comes first.
	Previous string
	// Carts is how many documents Collection held right after the switch.
	Carts int64
	// EventsProcessed counts the events the rebuild replayed.
	EventsProcessed int64
	Duration        time.Duration
}

// Rebuild builds a fresh carts collection from the start of the log while
// queries keep reading the current one, then switches to it:
//
//  1. A second projector replays the log from the start into a new
//     collection (its own checkpoint), beside the live projector, until it
//     has caught up with the head of the log taken at the start.
//  2. The live projector is stopped; it flushes its batch and checkpoint.
//     GetCart keeps reading the current collection, complete up to there.
//  3. The rebuild's projector goes on until its checkpoint passes the last
//     event the live projector stored, so that the new collection holds
//     everything a reader may already have seen; then it stops.
//  4. The catalog records the new collection as active, readers switch to
//     it (reads in flight on the old one finish first) and the live
//     projector starts again on it from the new collection's checkpoint:
//     events written during the switch are picked up from there, and the
//     version guard makes any overlap harmless.
//  5. Rebuild returns; after DropDelay (other replicas follow the catalog
//     meanwhile) the previous collection is dropped in the background.
//
// No reader ever sees a half-built collection or a cart going back in
// versions. report receives progress (nil: logged only). When ctx ends or
// anything fails before step 4, the new collection is dropped and the live
// projector goes on where it was.
func (s *Service) Rebuild(ctx context.Context, report func(Progress)) (RebuildResult, error) {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return RebuildResult{}, err
	}
	defer end()
	start := time.Now()
	live, cat := s.cfg.Live, s.cfg.Live.Catalog()
	cur, _ := live.Current()
	if cur == nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %w", readside.ErrNotOpen)
	}
	old := cur.Name()
	head, err := s.cfg.Events.HeadPosition(ctx)
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	target := eventlog.Position{Commit: head.Commit, Prepare: head.Prepare}
	name := collectionName("carts", start)
	log := s.log.With("op", "rebuild", "collection", name)
	log.Info("read model rebuild started", "current", old, "target", target.String())

	// A collection of that name can only be left over from a crash: start empty.
	if err := cat.Drop(ctx, name); err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	store := live.Open(name)
	rp, stopR, err := s.runProjector(name, store, true)
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	committed := false
	keepNew := false
	defer func() {
		stopR()
		if !committed && !keepNew {
			s.dropQuietly(ctx, name)
		}
	}()
	rep := startReporter("read model rebuild", rp, target, s.cfg.ProgressInterval, report, log)
	defer rep.halt()

	// 1. Catch up with the head of the log.
	if err := rp.WaitUntil(ctx, func(pr projection.Progress) bool {
		return pr.CaughtUp && reached(pr.Checkpoint, target)
	}); err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: catching up: %w", err)
	}

	// 2. Stop the live projector; readers stay on the current collection.
	livePr, err := live.Hold()
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	released := false
	defer func() {
		if !released {
			live.Release(old) // the live projector goes on where it was
		}
	}()

	// 3. Pass everything the live projector stored, then stop.
	if last := livePr.LastEvent; last != nil {
		if err := rp.WaitUntil(ctx, func(pr projection.Progress) bool { return reached(pr.Checkpoint, *last) }); err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild: passing the live projector's last event %v: %w", *last, err)
		}
	}
	stopR()
	final := rep.finish()
	log.Info("rebuild passed the live projector", "live_last_event", positionAttr(livePr.LastEvent),
		"live_checkpoint", positionAttr(livePr.Checkpoint), "rebuild_checkpoint", final.Position.String())

	// 4. Switch: record it, then move readers and the live projector. A
	// replica that lost the lease meanwhile leaves the read model to the
	// new holder's projector.
	if !live.Active() {
		return RebuildResult{}, fmt.Errorf("rebuild: before switching: %w", readside.ErrNotHolder)
	}
	if err := cat.SetActive(ctx, name); err != nil {
		// The write may have landed even though it failed for us: ask again.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), switchReadTimeout)
		active, rerr := cat.Active(rctx)
		cancel()
		switch {
		case rerr == nil && active == name:
			log.Warn("recording the switch failed but it took effect", "err", err)
		case rerr != nil:
			keepNew = true // in doubt: never drop what may be the active collection
			log.Error("cannot tell whether the switch was recorded; the new collection is kept",
				"err", err, "read_err", rerr)
			return RebuildResult{}, fmt.Errorf("rebuild: switching to %s: %w", name, err)
		default:
			return RebuildResult{}, fmt.Errorf("rebuild: switching to %s: %w", name, err)
		}
	}
	committed = true
	live.Release(name)
	released = true
	carts, err := store.CountCarts(context.WithoutCancel(ctx))
	if err != nil {
		log.Warn("cannot count the carts of the new collection", "err", err)
	}
	res := RebuildResult{
		Collection: name, Previous: old, Carts: carts,
		EventsProcessed: final.EventsProcessed, Duration: time.Since(start),
	}
	log.Info("read model switched", "previous", old, "carts", carts,
		"events_processed", res.EventsProcessed, "duration", res.Duration)

	// 5. Drop the previous collection once other replicas have followed;
	// the caller need not wait for that. Close waits for it (or cancels
	// it: the record makes the next start drop it).
	if r := s.cfg.Retirements; r != nil {
		if err := r.Retire(ctx, old, time.Now().Add(s.cfg.DropDelay)); err != nil {
			log.Warn("cannot record the previous collection as retired; drop it by hand if this process stops before the drop", "previous", old, "err", err)
		}
	}
	s.ops.Add(1) // safe: this operation's own count keeps the group above 0
	go func() {
		defer s.ops.Done()
		t := time.NewTimer(s.cfg.DropDelay)
		defer t.Stop()
		select {
		case <-t.C:
			s.dropQuietly(s.base, old)
			if r := s.cfg.Retirements; r != nil {
				if err := r.Forget(s.base, old); err != nil {
					log.Warn("cannot forget the dropped collection", "previous", old, "err", err)
				}
			}
			log.Info("previous collection dropped", "previous", old)
		case <-s.base.Done():
			if s.cfg.Retirements != nil {
				log.Info("shutting down before dropping the previous collection; the next start drops it", "previous", old)
			} else {
				log.Warn("shutting down before dropping the previous collection; drop it by hand", "previous", old)
			}
		}
	}()
	return res, nil
}

func positionAttr(p *eventlog.Position) string {
	if p == nil {
		return "none"
	}
	return p.String()
}
