package readmodel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/acme/cart/internal/eventlog"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Fenced returns the Store as the holder of lease writes it: checkpoints
// carry the lease's epoch, and a checkpoint stored by a later epoch can no
// longer be moved by this one (an error wrapping ErrLeaseLost). The new
// holder excludes the old at once: its first LoadCheckpoint stamps the
// checkpoint with its epoch, before it projects anything. With
// Options.IDOnlyFilter, WriteCarts also checks the lease (Lease.Check)
// before writing, as its filter no longer guards the write; with the
// atomic filter a late write of an old holder is a conflict, never harm.
// With IDOnlyFilter, replaces marked Known (the projector's own versions)
// skip the read of versions while the lease stays at the epoch its last
// LoadCheckpoint claimed (writeChunkByID).
//
// Every writer of a checkpoint name must write it fenced: an unfenced
// SaveCheckpoint replaces the document without its epoch.
//
// On FerretDB the epoch condition, like every condition but {_id}, is not
// atomic (TestCompatConditionalUpdateIsNotAtomic): an old holder's save
// racing the new holder's first checkpoint write can still land once; its
// next one cannot. That is acceptable for the local stack, which runs one
// replica; on MongoDB the fence is exact.
func (s *Store) Fenced(l *Lease) *Store {
	return &Store{
		db:          s.db,
		opts:        s.opts,
		carts:       s.carts,
		checkpoints: s.checkpoints,
		fence:       l.Check,
		lease:       l,
	}
}

// fencedCheckpoint is a checkpoint document as fenced stores write it; a
// document that only records a claim has no position.
type fencedCheckpoint struct {
	Commit  *int64 `bson:"commit"`
	Prepare *int64 `bson:"prepare"`
	Epoch   int64  `bson:"epoch"`
}

// epochAtMost matches a checkpoint document written at epoch or before
// (including by an unfenced store, which writes no epoch).
func epochAtMost(epoch int64) bson.D {
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "epoch", Value: bson.D{{Key: "$lte", Value: epoch}}}},
		bson.D{{Key: "epoch", Value: bson.D{{Key: "$exists", Value: false}}}},
	}}}
}

// heldEpoch is the lease's epoch while it is valid by the local clock.
func (s *Store) heldEpoch(op, name string) (int64, error) {
	epoch, ok := s.lease.held()
	if !ok {
		return 0, fmt.Errorf("readmodel %s %q: %w", op, name, ErrLeaseLost)
	}
	return epoch, nil
}

// claimCheckpoint stamps the checkpoint with the lease's epoch (creating a
// document with no position if there is none), so that no earlier epoch
// can move it any more.
func (s *Store) claimCheckpoint(ctx context.Context, name string) error {
	s.claimed.Store(0) // trust no Known write until the claim is made
	epoch, err := s.heldEpoch("claim checkpoint", name)
	if err != nil {
		return err
	}
	filter := append(bson.D{{Key: "_id", Value: name}}, bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: "epoch", Value: bson.D{{Key: "$lt", Value: epoch}}}},
		bson.D{{Key: "epoch", Value: bson.D{{Key: "$exists", Value: false}}}},
	}})
	_, err = s.checkpoints.UpdateOne(ctx, filter,
		bson.D{{Key: "$set", Value: bson.D{{Key: "epoch", Value: epoch}}}}, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		// The document is at this epoch already, or at a later one.
		err = s.checkEpoch(ctx, name, epoch)
	} else if err != nil {
		err = fmt.Errorf("readmodel claim checkpoint %q: %w", name, translate(ctx, err))
	}
	if err != nil {
		return err
	}
	s.claimed.Store(epoch)
	return nil
}

// checkEpoch fails with ErrLeaseLost if the checkpoint is at a later epoch.
func (s *Store) checkEpoch(ctx context.Context, name string, epoch int64) error {
	var d fencedCheckpoint
	err := s.checkpoints.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&d)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("readmodel checkpoint %q: %w", name, translate(ctx, err))
	}
	if d.Epoch > epoch {
		return fmt.Errorf("readmodel checkpoint %q: stored by epoch %d, this is %d: %w", name, d.Epoch, epoch, ErrLeaseLost)
	}
	return nil
}

// saveFencedCheckpoint moves the checkpoint forward if it is at this
// epoch or an earlier one; a checkpoint further on is kept, one at a later
// epoch is an ErrLeaseLost.
func (s *Store) saveFencedCheckpoint(ctx context.Context, name string, pos eventlog.Position) error {
	if pos.Commit > math.MaxInt64 || pos.Prepare > math.MaxInt64 {
		return fmt.Errorf("readmodel save checkpoint %q: position %v does not fit int64", name, pos)
	}
	epoch, err := s.heldEpoch("save checkpoint", name)
	if err != nil {
		return err
	}
	c, p := int64(pos.Commit), int64(pos.Prepare)
	filter := bson.D{
		{Key: "_id", Value: name},
		{Key: "$and", Value: bson.A{
			epochAtMost(epoch),
			bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: "commit", Value: bson.D{{Key: "$exists", Value: false}}}},
				bson.D{{Key: "commit", Value: bson.D{{Key: "$lt", Value: c}}}},
				bson.D{{Key: "commit", Value: c}, {Key: "prepare", Value: bson.D{{Key: "$lte", Value: p}}}},
			}}},
		}},
	}
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "commit", Value: c}, {Key: "prepare", Value: p}, {Key: "epoch", Value: epoch},
		{Key: "updated_at", Value: time.Now().UTC()},
	}}}
	_, err = s.checkpoints.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		// Further on (kept), or at a later epoch (lost).
		return s.checkEpoch(ctx, name, epoch)
	}
	if err != nil {
		return fmt.Errorf("readmodel save checkpoint %q: %w", name, translate(ctx, err))
	}
	return nil
}

// fenceWrites stops a fenced store's document writes once its lease has
// run out by the local clock (or was found lost), with no round trip: a
// holder that was paused past its lease, or whose renewals failed, writes
// no more documents after the moment another replica may have taken over.
// The version guard already makes such a late write harmless with the
// atomic filter; this makes it not happen in the first place, and with
// Options.IDOnlyFilter the stored lease is checked as well (fence).
func (s *Store) fenceWrites() error {
	if s.lease == nil {
		return nil
	}
	_, err := s.heldEpoch("write carts", s.carts.Name())
	return err
}
