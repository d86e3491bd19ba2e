package readside

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/acme/cart/internal/projection"
)

// DefaultProgressInterval is how often a replica that does not run the
// projector reads the checkpoint while GetCart calls wait for a version.
const DefaultProgressInterval = 50 * time.Millisecond

// releaseTimeout bounds giving the lease up at shutdown.
const releaseTimeout = 5 * time.Second

// ErrNotHolder says this replica does not run the projector (another
// replica holds the lease), so an operation that writes or compares the
// read model as a whole must be asked of the holder. The admin API answers
// FAILED_PRECONDITION naming the holder.
var ErrNotHolder = errors.New("this replica does not hold the projector lease")

// Lease elects the one replica of a read model whose live projector runs
// (readmodel.Lease implements it). The projector's store must be fenced by
// the same lease (Config.OpenFenced), so that a replica that lost it cannot
// move the checkpoint even before Live has noticed.
type Lease interface {
	// Acquire takes the lease if it is free or expired (ok false, no
	// error, when another replica holds it).
	Acquire(ctx context.Context) (epoch int64, ok bool, err error)
	// Renew extends the lease held by ttl from now.
	Renew(ctx context.Context) error
	// Release gives the lease up so that another replica takes over at once.
	Release(ctx context.Context) error
	// Epoch is the epoch held: 0 once the lease is known lost (a renewal
	// found it taken over or expired).
	Epoch() int64
	// Holder reads who holds the lease now ("" if nobody), for messages.
	Holder(ctx context.Context) (string, error)
	// ID is this replica's holder ID.
	ID() string
}

// Active tells whether this replica runs the live projector: always true
// without a lease, else while it holds the lease. Metrics and health
// read it.
func (l *Live) Active() bool { return l.active.Load() }

// CheckHolder returns nil if this replica runs the projector, else an
// error wrapping ErrNotHolder that names the replica which does (if it can
// be read). The read-model operations (rebuild, verify, replaying parked
// events) call it first: they only make sense beside the live projector.
func (l *Live) CheckHolder(ctx context.Context) error {
	if l.Active() {
		return nil
	}
	holder, err := l.cfg.Lease.Holder(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("%w (the holder cannot be read: %v)", ErrNotHolder, err)
	case holder == "":
		return fmt.Errorf("%w; no replica holds it right now, retry in a moment", ErrNotHolder)
	}
	return fmt.Errorf("%w; ask replica %q", ErrNotHolder, holder)
}

// lead holds the lease for as long as it can and keeps trying to acquire
// it when it does not hold it, every ttl/3 (with jitter, so that replicas
// started together do not knock in step). While it holds the lease the
// live projector runs; when a renewal finds the lease lost, or renewals
// fail until the lease's validity (counted from the start of the last
// successful call, as the lease itself does) has run out, the projector is
// stopped at once. It returns when ctx ends, holding the lease or not:
// Run stops the projector and then releases it.
func (l *Live) lead(ctx context.Context) {
	lease, ttl := l.cfg.Lease, l.cfg.LeaseTTL
	interval := ttl / 3
	var validUntil time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		next := interval/2 + rand.N(interval/2+1)
		if !l.Active() {
			start := time.Now()
			actx, cancel := context.WithTimeout(ctx, interval)
			epoch, ok, err := lease.Acquire(actx)
			cancel()
			switch {
			case err != nil && ctx.Err() == nil:
				l.log.Warn("cannot acquire the projector lease; retrying", "err", err, "retry_in", next)
			case ok:
				validUntil = start.Add(ttl)
				l.log.Info("projector lease acquired; this replica runs the projector", "holder", lease.ID(), "epoch", epoch)
				l.setActive(true)
				next = interval
			}
			timer.Reset(next)
			continue
		}
		start := time.Now()
		rctx, cancel := context.WithDeadline(ctx, validUntil)
		err := lease.Renew(rctx)
		cancel()
		switch {
		case err == nil:
			validUntil = start.Add(ttl)
			timer.Reset(interval)
		case ctx.Err() != nil:
			return
		case lease.Epoch() == 0 || !time.Now().Before(validUntil):
			l.log.Warn("projector lease lost; stopping the projector", "holder", lease.ID(), "err", err)
			l.setActive(false)
			timer.Reset(next)
		default:
			// Try again soon, and at the latest when the lease runs out,
			// which then counts as lost.
			wait := min(interval/3, time.Until(validUntil))
			l.log.Warn("cannot renew the projector lease; retrying", "err", err, "retry_in", wait, "valid_for", time.Until(validUntil))
			timer.Reset(max(wait, 0))
		}
	}
}

// setActive starts or stops the live projector as the lease is won or
// lost. Waiters for a version read again either way: a version another
// replica stored before this one took over is announced by no projector
// here, and after losing the lease the checkpoint watch takes over.
func (l *Live) setActive(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active.Store(on)
	if on {
		if !l.held {
			l.startLocked()
		}
	} else {
		l.stopLocked()
	}
	l.cfg.Projection.Notifier.WakeAll()
}

// releaseLease gives the lease up at shutdown, after the projector's last
// flush, so that another replica takes over at once instead of after ttl.
func (l *Live) releaseLease(ctx context.Context) {
	l.active.Store(false)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := l.cfg.Lease.Release(rctx); err != nil {
		l.log.Warn("cannot release the projector lease; another replica takes over when it expires", "err", err)
		return
	}
	l.log.Info("projector lease released", "holder", l.cfg.Lease.ID())
}

// Wait implements query.VersionWaiter: it registers with the live
// projector's Notifier and, on a replica that does not run the projector,
// also with the checkpoint watch, which wakes every waiter when the
// holder's checkpoint moves.
func (l *Live) Wait(userID string, minVersion int64) (*projection.Wake, func()) {
	l.waiting.Add(1)
	wake, cancel := l.cfg.Projection.Notifier.Wait(userID, minVersion)
	var done atomic.Bool
	return wake, func() {
		cancel()
		if done.CompareAndSwap(false, true) {
			l.waiting.Add(-1)
		}
	}
}

// watch learns the holder's progress for a replica that does not run the
// projector, without polling documents: while any GetCart waits for a
// version (and only then), it reads the active collection's checkpoint
// every ProgressInterval, and when it moved wakes every waiter, which then
// reads its own document once. The projector stores documents before the
// checkpoint that covers them, so a waiter woken by a moved checkpoint
// finds every document written before it. The first read after a quiet
// spell has nothing to compare with and wakes the waiters too, since the
// checkpoint may have moved between a waiter's read and that first read.
func (l *Live) watch(ctx context.Context) {
	t := time.NewTicker(l.cfg.ProgressInterval)
	defer t.Stop()
	var (
		known bool // last holds the checkpoint of collection lastName
		last  string
		name  string
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := l.cur.Load()
		if st == nil || l.Active() || l.waiting.Load() == 0 {
			known = false
			continue
		}
		cp, err := st.store.LoadCheckpoint(ctx, st.name)
		if err != nil {
			l.log.Debug("cannot read the checkpoint for waiting readers", "err", err)
			continue
		}
		pos := "none"
		if cp != nil {
			pos = cp.String()
		}
		if !known || name != st.name || pos != last {
			l.cfg.Projection.Notifier.WakeAll()
		}
		known, name, last = true, st.name, pos
	}
}
