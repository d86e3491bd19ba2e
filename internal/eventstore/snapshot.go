package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/acme/cart/internal/cart"
)

// SnapshotStreamPrefix starts the name of a cart's snapshot stream. It must
// not start with StreamPrefix ("cart-"): the projector follows every stream
// with that prefix and would take snapshots for cart events.
const SnapshotStreamPrefix = "cartsnapshot-"

// snapshotEventType is the stored type of a snapshot event; the payload's
// schema is the write side's business (see package command).
const snapshotEventType = "CartSnapshot"

// snapshotMaxCountEvery re-asserts the snapshot stream's $maxCount every so
// many snapshots, in case setting it with the first snapshot failed; setting
// it again is harmless.
const snapshotMaxCountEvery = 64

// SnapshotStream is the stream that holds userID's latest cart snapshot.
func SnapshotStream(userID string) string { return SnapshotStreamPrefix + userID }

// ReadSnapshot returns the latest snapshot written for userID, or nil when
// there is none. The bytes are opaque here: the write side owns their schema
// and must distrust them (a snapshot is a cache, the stream is the truth).
func (s *Store) ReadSnapshot(ctx context.Context, userID string) (_ []byte, err error) {
	defer s.timed("read", time.Now(), &err)
	var data []byte
	_, err = s.readRaw(ctx, SnapshotStream(userID), esdb.Backwards, esdb.End{}, 1, func(re *esdb.RecordedEvent) error {
		data = re.Data
		return nil
	})
	if err != nil && !errors.Is(err, cart.ErrNotFound) {
		return nil, fmt.Errorf("eventstore: read snapshot of %s: %w", userID, err)
	}
	return data, nil
}

// WriteSnapshot stores data as userID's latest snapshot. The snapshot stream
// keeps only its last event ($maxCount 1, set with the first snapshot), so
// snapshots cost constant space per cart however often they are written.
func (s *Store) WriteSnapshot(ctx context.Context, userID string, data []byte) (err error) {
	defer s.timed("append", time.Now(), &err)
	stream := SnapshotStream(userID)
	wr, err := s.appendRaw(ctx, stream, esdb.Any{}, esdb.EventData{
		EventType:   snapshotEventType,
		ContentType: esdb.ContentTypeJson,
		Data:        data,
	})
	if err != nil {
		return fmt.Errorf("eventstore: write snapshot %s: %w", stream, err)
	}
	if wr.NextExpectedVersion%snapshotMaxCountEvery != 0 {
		return nil
	}
	// Stream metadata is a JSON event in "$$<stream>" (what the client's
	// SetStreamMetadata writes), appended here through the same guarded path.
	if _, err := s.appendRaw(ctx, "$$"+stream, esdb.Any{}, esdb.EventData{
		EventType:   "$metadata",
		ContentType: esdb.ContentTypeJson,
		Data:        []byte(`{"$maxCount":1}`),
	}); err != nil {
		return fmt.Errorf("eventstore: set $maxCount of %s: %w", stream, err)
	}
	return nil
}
