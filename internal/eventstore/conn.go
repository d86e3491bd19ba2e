package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/acme/cart/internal/cart"
)

// Why this file exists: three behaviours of the v4 client (v4.2.0) that a
// long-running service must not meet unprotected.
//
//  1. Finding the node (discovery) runs inside the client's connection
//     goroutine and ignores contexts: a call made while it runs waits until
//     it ends, and concurrent callers queue behind it.
//  2. When discovery gives up (MaxDiscoverAttempts), that goroutine exits
//     for good: callers already queued stay blocked forever, later ones get
//     ErrorCodeConnectionClosed forever. The adapter therefore sets an
//     unbounded number of attempts (discovery then ends when the store is
//     back) and bounds waiting itself.
//  3. Close closes a channel that in-flight calls may still send to, which
//     panics them ("send on closed channel"). The adapter therefore counts
//     the calls using the client and closes it after the last one.
//
// While the store is not known to answer, only one call at a time (the
// probe) may enter the client; other callers wait briefly for its outcome
// and otherwise fail fast with cart.ErrUnavailable, so that an outage under
// load does not pile up goroutines inside the client. The probe's caller
// stops waiting after probeTimeout with cart.ErrUnavailable too.

// probeWait bounds how long a call waits for another call's probe before
// reporting the store unavailable. The first probe after start normally
// answers in milliseconds; during an outage it lasts until the store is back.
const probeWait = 500 * time.Millisecond

// probeTimeout bounds how long the probe waits for the client: longer than
// a healthy store takes to be found and answer a first call, short enough
// that a caller learns of an outage as ErrUnavailable (UNAVAILABLE, with a
// retry hint) well before its own deadline, instead of waiting it out.
const probeTimeout = 3 * time.Second

// unboundedDiscovery replaces the client's discovery attempt limit; see (2).
const unboundedDiscovery = 1 << 30

// conn is one client and the number of calls using it.
type conn struct {
	client  *esdb.Client
	users   int
	retired bool // Close was called: close the client after the last user
}

// probe is the one call allowed into the client while the store is not
// known to answer; waiters learn its outcome from ok once done is closed.
type probe struct {
	done chan struct{}
	ok   bool
}

// lease is one call's use of the client. Whoever finishes the call ends the
// lease with its outcome: the caller, or the goroutine that ran the call
// when the caller stopped waiting. A long-lived call (a subscription)
// settles the lease as soon as the store answered, so that it does not hold
// the probe for its whole life, and ends it when it is over.
type lease struct {
	s       *Store
	c       *conn
	p       *probe // set when this call is the probe
	settled sync.Once
	ended   sync.Once
}

// acquire leases the client for one call.
func (s *Store) acquire(ctx context.Context) (*lease, error) {
	timer := time.NewTimer(probeWait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if s.ready || s.probing == nil {
			l := &lease{s: s, c: s.cur}
			s.cur.users++
			if !s.ready {
				l.p = &probe{done: make(chan struct{})}
				s.probing = l.p
			}
			s.mu.Unlock()
			return l, nil
		}
		p := s.probing
		s.mu.Unlock()
		select {
		case <-p.done:
			if !p.ok {
				return nil, fmt.Errorf("the store did not answer the last attempt: %w", cart.ErrUnavailable)
			}
		case <-timer.C:
			return nil, fmt.Errorf("the store has not answered for %s: %w", probeWait, cart.ErrUnavailable)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// waitFor returns the context a call waits for the client with: the
// caller's, bounded by probeTimeout when the call is the probe. The call
// itself may go on after the wait ends (see async); its outcome still
// settles the probe.
func (l *lease) waitFor(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.p == nil {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, probeTimeout)
}

// abandonedErr is the error of a call that stopped waiting for the client:
// the caller's context error, or ErrUnavailable when only the probe's
// bound ran out.
func abandonedErr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return fmt.Errorf("the store did not answer within %s: %w", probeTimeout, cart.ErrUnavailable)
	}
	return err
}

// settle records what a call's outcome says about the store and, if the
// call is the probe, tells the waiters. err is the outcome after translate:
// nil or a refusal means the store answered, cart.ErrUnavailable that it did
// not, a context error or a close says nothing either way. Only the first
// settle of a lease counts.
func (l *lease) settle(err error) {
	l.settled.Do(func() {
		s := l.s
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
			errors.Is(err, ErrClosed), errors.Is(err, ErrSubscriptionClosed):
			// The caller stopped first: the outcome says nothing.
		case errors.Is(err, cart.ErrUnavailable):
			s.ready = false
		default:
			s.ready = true
		}
		if l.p != nil {
			l.p.ok = s.ready
			close(l.p.done)
			if s.probing == l.p {
				s.probing = nil
			}
		}
	})
}

// end settles the lease (if that was not done before) and returns the
// client, closing it if the Store was closed and this was its last user.
func (l *lease) end(err error) {
	l.settle(err)
	l.ended.Do(func() {
		s := l.s
		s.mu.Lock()
		defer s.mu.Unlock()
		l.c.users--
		if l.c.retired && l.c.users == 0 {
			_ = l.c.client.Close()
		}
	})
}

// finish translates a call's error, ends the lease with it and returns it.
func (l *lease) finish(ctx context.Context, err error) error {
	err = translate(ctx, err)
	l.end(err)
	return err
}

// async runs call in its own goroutine so that the caller can stop waiting
// when ctx ends even while the client ignores it (see (1) above). If the
// caller stops waiting (abandoned is true, err is ctx's), abandon receives
// the call's results once it returns, to release what it holds and end the
// lease: the caller must not.
//
// A context that can never end (ctx.Done() is nil: no deadline, no cancel)
// gives the caller nothing to stop waiting for, so the goroutine would only
// add a spawn and a channel hand-off to every call: call runs on the
// caller's goroutine instead, which waits exactly as long either way. Every
// other context keeps the goroutine, even while the store answers: a call
// that finds the client healthy can still land in a rediscovery that another
// call's failure just started, and only the goroutine bounds its wait.
func async[T any](ctx context.Context, call func() (T, error), abandon func(T, error)) (v T, abandoned bool, err error) {
	if ctx.Done() == nil {
		v, err = call()
		return v, false, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := call()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, false, r.err
	case <-ctx.Done():
		go func() {
			r := <-ch
			abandon(r.v, r.err)
		}()
		return v, true, ctx.Err()
	}
}
