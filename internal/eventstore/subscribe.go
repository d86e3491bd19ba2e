package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// ErrSubscriptionClosed is returned by Next after Close, so that a consumer
// shutting down does not mistake its own Close for a dropped subscription.
var ErrSubscriptionClosed = errors.New("eventstore: subscription closed")

// Subscription is a catch-up subscription to the cart streams in $all. It is
// not safe for concurrent use by several consumers: one goroutine calls Next.
type Subscription struct {
	lease  *lease // held until the pump exits
	sub    *esdb.Subscription
	ctx    context.Context
	cancel context.CancelFunc

	msgs  chan received
	done  chan struct{} // closed when the pump goroutine has exited
	final error         // the drop error delivered last; read only after done

	closeOnce sync.Once
	closed    chan struct{}
}

type received struct {
	msg eventlog.Message
	err error
}

// Subscribe starts a catch-up subscription to $all with the server-side
// stream prefix filter "cart-", delivering events strictly after from (nil:
// from the start of the log). The subscription lives until Close, ctx's end
// or a drop; it never resubscribes by itself: the consumer does, from its
// last checkpoint, so that it decides the backoff.
func (s *Store) Subscribe(ctx context.Context, from *eventlog.Position) (eventlog.Subscription, error) {
	l, err := s.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("eventstore: subscribe $all: %w", err)
	}
	var start esdb.AllPosition = esdb.Start{}
	if from != nil {
		start = esdb.Position{Commit: from.Commit, Prepare: from.Prepare}
	}
	sctx, cancel := context.WithCancel(ctx)
	wctx, stopWaiting := l.waitFor(sctx)
	defer stopWaiting()
	es, abandoned, err := async(wctx, func() (*esdb.Subscription, error) {
		return l.c.client.SubscribeToAll(sctx, esdb.SubscribeToAllOptions{
			From:   start,
			Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{StreamPrefix}},
		})
	}, func(es *esdb.Subscription, err error) {
		if es != nil {
			_ = es.Close()
		}
		_ = l.finish(sctx, err)
	})
	if abandoned {
		err = abandonedErr(sctx, err)
		cancel()
		return nil, fmt.Errorf("eventstore: subscribe $all: %w", err)
	}
	if err != nil {
		err = l.finish(sctx, err)
		cancel()
		return nil, fmt.Errorf("eventstore: subscribe $all: %w", err)
	}
	l.settle(nil) // the store confirmed the subscription
	sub := &Subscription{
		lease:  l,
		sub:    es,
		ctx:    sctx,
		cancel: cancel,
		msgs:   make(chan received),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
	}
	go sub.pump()
	return sub, nil
}

// pump turns the client's blocking Recv into a channel so that Next can also
// wait on its caller's context.
func (sub *Subscription) pump() {
	defer close(sub.done)
	defer func() { sub.lease.end(sub.final) }()
	for {
		ev := sub.sub.Recv()
		var r received
		switch {
		case ev.SubscriptionDropped != nil:
			r.err = sub.dropErr(ev.SubscriptionDropped.Error)
		case ev.EventAppeared != nil:
			oe := ev.EventAppeared.OriginalEvent()
			if oe == nil {
				continue
			}
			re := recordedFrom(oe)
			r.msg.Event = &re
		case ev.CheckPointReached != nil:
			r.msg.Checkpoint = &eventlog.Position{Commit: ev.CheckPointReached.Commit, Prepare: ev.CheckPointReached.Prepare}
		case ev.CaughtUp != nil:
			r.msg.CaughtUp = true
		default: // FellBehind: current servers do not send it; nothing to do.
			continue
		}
		if r.err != nil {
			sub.final = r.err
		}
		select {
		case sub.msgs <- r:
		case <-sub.closed:
			return
		}
		if r.err != nil {
			return
		}
	}
}

// dropErr explains why the subscription dropped: our own Close, the
// subscription's context, an outage (cart.ErrUnavailable, worth a
// resubscribe with backoff) or a refusal by the server.
func (sub *Subscription) dropErr(err error) error {
	select {
	case <-sub.closed:
		return ErrSubscriptionClosed
	default:
	}
	if ctxErr := sub.ctx.Err(); ctxErr != nil {
		return fmt.Errorf("eventstore: subscription: %w", ctxErr)
	}
	if err == nil {
		err = errors.New("dropped without a reason")
	}
	if c := status.Code(err); transient(c) || c == codes.Canceled {
		// Canceled without our Close or context: the connection went away.
		return fmt.Errorf("eventstore: subscription dropped: %v: %w", err, cart.ErrUnavailable)
	}
	return fmt.Errorf("eventstore: subscription dropped: %w", err)
}

// Next waits for the next message. An error ends the subscription: it wraps
// cart.ErrUnavailable when the connection was lost, ErrSubscriptionClosed
// after Close, or ctx's error when ctx ended first (the subscription then
// stays usable).
func (sub *Subscription) Next(ctx context.Context) (eventlog.Message, error) {
	if err := ctx.Err(); err != nil {
		return eventlog.Message{}, fmt.Errorf("eventstore: subscription next: %w", err)
	}
	select {
	case r := <-sub.msgs:
		return r.msg, r.err
	case <-sub.done:
		// The pump exited: after delivering its final error, or on Close.
		if sub.final != nil {
			return eventlog.Message{}, sub.final
		}
		return eventlog.Message{}, ErrSubscriptionClosed
	case <-sub.closed:
		return eventlog.Message{}, ErrSubscriptionClosed
	case <-ctx.Done():
		return eventlog.Message{}, fmt.Errorf("eventstore: subscription next: %w", ctx.Err())
	}
}

// Close ends the subscription and waits until its goroutine has exited. It
// is safe to call more than once and concurrently with Next.
func (sub *Subscription) Close() error {
	sub.closeOnce.Do(func() {
		close(sub.closed)
		sub.cancel()
		_ = sub.sub.Close()
	})
	<-sub.done
	return nil
}
