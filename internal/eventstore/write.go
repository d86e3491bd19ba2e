package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
)

// eventIDNamespace seeds the name-based (v5) UUIDs of events, so that the same
// command always produces the same event IDs. Never change it: resent
// batches would no longer be recognised by EventStoreDB.
var eventIDNamespace = uuid.MustParse("6f1d2b9e-3c54-4f0e-9a57-2f3b8d1c0e41")

// EventID is the ID of the i-th event written for a command: derived from the
// command's ID and fingerprint and from the event's own data, so that
// EventStoreDB's idempotence check recognises a resent batch (same IDs at
// the same expected revision) only when it would write exactly the same
// events. A different command that reuses the ID, or the same command
// decided differently (a price changed in between, or a replica deciding on
// a cart it has not caught up with), gets different IDs and a conflict
// instead of a false "already written" that would leave the deciding
// replica believing in events the stream does not hold.
func EventID(commandID, commandHash string, i int, data []byte) uuid.UUID {
	sum := sha256.Sum256(data)
	return uuid.NewSHA1(eventIDNamespace, []byte(commandID+"\x00"+commandHash+"\x00"+strconv.Itoa(i)+"\x00"+hex.EncodeToString(sum[:])))
}

// AppendEvents appends a command's events to userID's stream if the stream's
// last revision is expected (-1: the stream must not exist yet), every event
// carrying meta. It returns the revision of the last event written, the
// cart's new version. A stream that moved on gives an error wrapping
// cart.ErrConcurrencyConflict; the caller reloads and decides again.
func (s *Store) AppendEvents(ctx context.Context, userID string, expected int64, meta cart.Metadata, events []cart.Event) (_ int64, err error) {
	defer s.timed("append", time.Now(), &err)
	stream := StreamName(userID)
	if len(events) == 0 {
		return 0, fmt.Errorf("eventstore: append to %s: no events", stream)
	}
	var exp esdb.ExpectedRevision
	switch {
	case expected == -1:
		exp = esdb.NoStream{}
	case expected >= 0:
		exp = esdb.Revision(uint64(expected))
	default:
		return 0, fmt.Errorf("eventstore: append to %s: invalid expected revision %d", stream, expected)
	}
	md, err := cart.MarshalMetadata(meta)
	if err != nil {
		return 0, fmt.Errorf("eventstore: append to %s: %w", stream, err)
	}
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		b, err := cart.Marshal(e)
		if err != nil {
			return 0, fmt.Errorf("eventstore: append to %s: %w", stream, err)
		}
		data[i] = esdb.EventData{
			EventType:   e.Type(),
			ContentType: esdb.ContentTypeJson,
			Data:        b,
			Metadata:    md,
		}
		if meta.CommandID != "" {
			data[i].EventID = EventID(meta.CommandID, meta.CommandHash, i, b)
		}
	}
	wr, err := s.appendRaw(ctx, stream, exp, data...)
	if err != nil {
		return 0, fmt.Errorf("eventstore: append to %s at %d: %w", stream, expected, err)
	}
	return int64(wr.NextExpectedVersion), nil
}

// appendRaw appends with the leased client; its errors come translated.
func (s *Store) appendRaw(ctx context.Context, stream string, exp esdb.ExpectedRevision, data ...esdb.EventData) (_ *esdb.WriteResult, err error) {
	ctx, span := s.startSpan(ctx, spanAppend, stream)
	defer func() { endSpan(span, err) }()
	l, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	wctx, stopWaiting := l.waitFor(ctx)
	defer stopWaiting()
	wr, abandoned, err := async(wctx, func() (*esdb.WriteResult, error) {
		return l.c.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, data...)
	}, func(_ *esdb.WriteResult, err error) { _ = l.finish(ctx, err) })
	if abandoned {
		return nil, abandonedErr(ctx, err)
	}
	return wr, l.finish(ctx, err)
}

// LoadEvents reads userID's stream forwards from revision from (inclusive)
// and calls fn with each event decoded, in order; fn's error stops the read
// and is returned wrapped. A missing stream calls fn never and is no error.
// An event that does not decode (unknown type, bad JSON) is an error
// wrapping *cart.DecodeError: the write side never decides on a cart it
// cannot fully read.
func (s *Store) LoadEvents(ctx context.Context, userID string, from int64, fn func(revision int64, e cart.Event, m cart.Metadata) error) (err error) {
	defer s.timed("read", time.Now(), &err)
	stream := StreamName(userID)
	var stopped error // fn's own error, told apart from the store's
	_, err = s.readRaw(ctx, stream, esdb.Forwards, revision(from), readCount(0), func(re *esdb.RecordedEvent) error {
		e, err := cart.Unmarshal(re.EventType, re.Data)
		if err != nil {
			stopped = fmt.Errorf("revision %d: %w", re.EventNumber, err)
			return stopped
		}
		m, err := cart.UnmarshalMetadata(re.UserMetadata)
		if err != nil {
			stopped = fmt.Errorf("revision %d: %w", re.EventNumber, err)
			return stopped
		}
		if err := fn(int64(re.EventNumber), e, m); err != nil {
			stopped = err
			return err
		}
		return nil
	})
	switch {
	case stopped != nil:
		return fmt.Errorf("eventstore: load %s from %d: %w", stream, from, stopped)
	case err != nil && !errors.Is(err, cart.ErrNotFound):
		return fmt.Errorf("eventstore: load %s from %d: %w", stream, from, err)
	}
	return nil
}
