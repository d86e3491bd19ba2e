package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// recordedFrom turns the client's event into the log's vocabulary.
func recordedFrom(e *esdb.RecordedEvent) eventlog.Event {
	return eventlog.Event{
		StreamID: e.StreamID,
		UserID:   strings.TrimPrefix(e.StreamID, StreamPrefix),
		Revision: int64(e.EventNumber),
		Position: eventlog.Position{Commit: e.Position.Commit, Prepare: e.Position.Prepare},
		EventID:  e.EventID.String(),
		Type:     e.EventType,
		Data:     e.Data,
		Metadata: e.UserMetadata,
		Created:  e.CreatedDate,
	}
}

// ReadStream reads userID's stream forwards from revision from (inclusive),
// at most count events (count <= 0: all of them). A stream that does not
// exist yet gives an empty slice and no error: for a cart that simply means
// "no events yet".
func (s *Store) ReadStream(ctx context.Context, userID string, from int64, count int) (_ []eventlog.Event, err error) {
	defer s.timed("read", time.Now(), &err)
	var out []eventlog.Event
	_, err = s.readRaw(ctx, StreamName(userID), esdb.Forwards, revision(from), readCount(count), func(e *esdb.RecordedEvent) error {
		out = append(out, recordedFrom(e))
		return nil
	})
	if err != nil && !errors.Is(err, cart.ErrNotFound) {
		return nil, fmt.Errorf("eventstore: read stream %s: %w", StreamName(userID), err)
	}
	return out, nil
}

// HeadPosition is the position of the last event in $all, the zero Position
// when the log is empty; the read side measures replay progress against it.
func (s *Store) HeadPosition(ctx context.Context) (_ eventlog.Position, err error) {
	defer s.timed("read", time.Now(), &err)
	var head eventlog.Position
	ctx, span := s.startSpan(ctx, spanReadAll, "")
	err = s.read(ctx, func(c *esdb.Client, ctx context.Context) (*esdb.ReadStream, error) {
		return c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	}, func(e *esdb.RecordedEvent) error {
		head = eventlog.Position{Commit: e.Position.Commit, Prepare: e.Position.Prepare}
		return nil
	})
	endSpan(span, err)
	if err != nil {
		return eventlog.Position{}, fmt.Errorf("eventstore: head position: %w", err)
	}
	return head, nil
}

// headScan is how many of the newest records of $all HeadEvent reads to
// find a cart event: $all has no server-side filter on reads, and the
// newest records may be snapshots or system records.
const headScan = 16

// HeadEvent is the newest cart event of $all, for the projector's lag.
// found is false when none of the newest headScan records is one (an empty
// log included): the caller keeps what it knew rather than guess.
func (s *Store) HeadEvent(ctx context.Context) (ev eventlog.Event, found bool, err error) {
	err = s.read(ctx, func(c *esdb.Client, ctx context.Context) (*esdb.ReadStream, error) {
		return c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, headScan)
	}, func(e *esdb.RecordedEvent) error {
		if !strings.HasPrefix(e.StreamID, StreamPrefix) {
			return nil
		}
		ev, found = recordedFrom(e), true
		return errHeadFound
	})
	if err != nil && !errors.Is(err, errHeadFound) {
		return eventlog.Event{}, false, fmt.Errorf("eventstore: head event: %w", err)
	}
	return ev, found, nil
}

// errHeadFound stops HeadEvent's read at the first cart event.
var errHeadFound = errors.New("head found")

// readRaw reads a stream and calls fn for each event in order, stopping at
// fn's first error (returned as is). It returns how many events it read and
// an error wrapping cart.ErrNotFound when the stream does not exist.
func (s *Store) readRaw(ctx context.Context, stream string, dir esdb.Direction, from esdb.StreamPosition, count uint64, fn func(*esdb.RecordedEvent) error) (n int, err error) {
	if stream != pingStream { // health checks every few seconds would drown the traces
		var span trace.Span
		ctx, span = s.startSpan(ctx, spanRead, stream)
		defer func() {
			span.SetAttributes(attribute.Int("eventstore.events", n))
			endSpan(span, err)
		}()
	}
	err = s.read(ctx, func(c *esdb.Client, ctx context.Context) (*esdb.ReadStream, error) {
		return c.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: dir, From: from}, count)
	}, func(e *esdb.RecordedEvent) error {
		n++
		return fn(e)
	})
	return n, err
}

// read opens a read with the leased client and calls fn for each event,
// stopping at fn's first error, which it returns as is; the read's own
// errors come translated.
func (s *Store) read(ctx context.Context, open func(*esdb.Client, context.Context) (*esdb.ReadStream, error), fn func(*esdb.RecordedEvent) error) error {
	l, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	// The read gets its own cancel so that returning early ends the stream;
	// async is given the caller's context, which tells whether anyone can
	// stop waiting at all (the derived one always could).
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wctx, stopWaiting := l.waitFor(ctx)
	defer stopWaiting()
	rs, abandoned, err := async(wctx, func() (*esdb.ReadStream, error) {
		return open(l.c.client, rctx)
	}, func(rs *esdb.ReadStream, err error) {
		if rs != nil {
			rs.Close()
		}
		_ = l.finish(ctx, err)
	})
	if abandoned {
		return abandonedErr(ctx, err)
	}
	if err != nil {
		return l.finish(ctx, err)
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			l.end(nil)
			return nil
		}
		if err != nil {
			return l.finish(ctx, err)
		}
		if err := fn(ev.OriginalEvent()); err != nil {
			l.end(nil)
			return err
		}
	}
}

// revision converts a 0-based revision to a read start; negative means the
// start of the stream.
func revision(from int64) esdb.StreamPosition {
	if from <= 0 {
		return esdb.Start{}
	}
	return esdb.Revision(uint64(from))
}

func readCount(count int) uint64 {
	if count <= 0 {
		return math.MaxUint64
	}
	return uint64(count)
}
