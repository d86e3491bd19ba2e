package readmodel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

// DefaultParked is the parking lot's collection.
const DefaultParked = "parked_events"

// ParkingLot stores the events the projector could not apply, one document
// per event, so that an operator can see them and replay them once the code
// knows how (projection.Parker). It is shared by every carts collection of
// the database: a rebuild meets the same poison events and parks them under
// the same keys.
//
//	parked_events: {
//	  _id:               string  projection.ParkingKey(position): log order
//	  user_id, stream_id, event_type, event_id: string
//	  revision:          int64   the event's stream revision
//	  commit, prepare:   int64   its $all position
//	  created:           date    when the event store recorded it
//	  data, metadata:    binary  the event as stored
//	  error:             string  why it could not be applied
//	  parked_at:         date
//	  replay_attempts:   int32   replays that failed
//	  last_replay_error: string  absent until a replay fails
//	}
type ParkingLot struct {
	coll *mongo.Collection
}

// ParkingLot returns the parking lot of database db.
func (c *Client) ParkingLot(db string) *ParkingLot {
	return &ParkingLot{coll: c.mc.Database(db).Collection(DefaultParked)}
}

var _ projection.Parker = (*ParkingLot)(nil)

type parkedDoc struct {
	Key             string    `bson:"_id"`
	UserID          string    `bson:"user_id"`
	StreamID        string    `bson:"stream_id"`
	Revision        int64     `bson:"revision"`
	Commit          int64     `bson:"commit"`
	Prepare         int64     `bson:"prepare"`
	EventType       string    `bson:"event_type"`
	EventID         string    `bson:"event_id"`
	Created         time.Time `bson:"created"`
	Data            []byte    `bson:"data"`
	Metadata        []byte    `bson:"metadata"`
	Error           string    `bson:"error"`
	ParkedAt        time.Time `bson:"parked_at"`
	ReplayAttempts  int32     `bson:"replay_attempts"`
	LastReplayError string    `bson:"last_replay_error,omitempty"`
}

// Park implements projection.Parker. Parking an event again (after a
// restart, a retried batch or in a rebuild) keeps the first record, with
// its park time and replay attempts.
func (l *ParkingLot) Park(ctx context.Context, ev eventlog.Event, cause error) error {
	if ev.Position.Commit > math.MaxInt64 || ev.Position.Prepare > math.MaxInt64 {
		return fmt.Errorf("readmodel park %s@%d: position %v does not fit int64", ev.StreamID, ev.Revision, ev.Position)
	}
	doc := parkedDoc{
		Key:       projection.ParkingKey(ev.Position),
		UserID:    ev.UserID,
		StreamID:  ev.StreamID,
		Revision:  ev.Revision,
		Commit:    int64(ev.Position.Commit),
		Prepare:   int64(ev.Position.Prepare),
		EventType: ev.Type,
		EventID:   ev.EventID,
		Created:   ev.Created.UTC(),
		Data:      nonNil(ev.Data),
		Metadata:  nonNil(ev.Metadata),
		Error:     cause.Error(),
		ParkedAt:  time.Now().UTC(),
	}
	if _, err := l.coll.InsertOne(ctx, doc); err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("readmodel park %s@%d: %w", ev.StreamID, ev.Revision, translate(ctx, err))
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ListParked returns at most limit parked events in log order with keys
// after after (empty: from the first), only userID's unless it is empty.
func (l *ParkingLot) ListParked(ctx context.Context, userID, after string, limit int) ([]projection.ParkedEvent, error) {
	filter := bson.D{}
	if after != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}})
	}
	if userID != "" {
		filter = append(filter, bson.E{Key: "user_id", Value: userID})
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := l.coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("readmodel list parked: %w", translate(ctx, err))
	}
	var docs []parkedDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("readmodel list parked: %w", translate(ctx, err))
	}
	out := make([]projection.ParkedEvent, len(docs))
	for i, d := range docs {
		out[i] = projection.ParkedEvent{
			Key: d.Key,
			Event: eventlog.Event{
				StreamID: d.StreamID, UserID: d.UserID, Revision: d.Revision,
				Position: eventlog.Position{Commit: uint64(d.Commit), Prepare: uint64(d.Prepare)},
				EventID:  d.EventID, Type: d.EventType, Data: d.Data, Metadata: d.Metadata,
				Created: d.Created.UTC(),
			},
			Error:           d.Error,
			ParkedAt:        d.ParkedAt.UTC(),
			ReplayAttempts:  int(d.ReplayAttempts),
			LastReplayError: d.LastReplayError,
		}
	}
	return out, nil
}

// DeleteParked removes parked events once they have been applied.
func (l *ParkingLot) DeleteParked(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := l.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}}); err != nil {
		return fmt.Errorf("readmodel delete parked: %w", translate(ctx, err))
	}
	return nil
}

// ReplayFailed counts a failed replay of a parked event and keeps why.
func (l *ParkingLot) ReplayFailed(ctx context.Context, key, cause string) error {
	res, err := l.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}}, bson.D{
		{Key: "$inc", Value: bson.D{{Key: "replay_attempts", Value: int32(1)}}},
		{Key: "$set", Value: bson.D{{Key: "last_replay_error", Value: cause}}},
	})
	if err != nil {
		return fmt.Errorf("readmodel replay failed %s: %w", key, translate(ctx, err))
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("readmodel replay failed %s: %w", key, errors.New("no such parked event"))
	}
	return nil
}

// CountParked returns how many events the parking lot holds now, for the
// parked-events gauge.
func (l *ParkingLot) CountParked(ctx context.Context) (int64, error) {
	n, err := l.coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("readmodel count parked: %w", translate(ctx, err))
	}
	return n, nil
}
