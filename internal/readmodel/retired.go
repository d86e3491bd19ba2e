package readmodel

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DefaultRetired is the collection that records carts collections a
// rebuild replaced and that are still to be dropped.
const DefaultRetired = "retired_collections"

// retiredDoc is one replaced collection: _id is its name, drop_after when
// every replica has had time to follow the switch.
type retiredDoc struct {
	ID        string    `bson:"_id"`
	DropAfter time.Time `bson:"drop_after"`
}

// Retire records that carts was replaced and may be dropped after t, so
// that a process stopped before it dropped the collection leaves the drop
// to the next one instead of leaving the collection behind for good.
func (c *Catalog) Retire(ctx context.Context, carts string, t time.Time) error {
	coll := c.client.mc.Database(c.db).Collection(DefaultRetired)
	doc := retiredDoc{ID: carts, DropAfter: t.UTC().Truncate(time.Millisecond)}
	if _, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: carts}}, doc, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("readmodel retire %q: %w", carts, translate(ctx, err))
	}
	return nil
}

// Retired returns the recorded retired collections and when each may be
// dropped.
func (c *Catalog) Retired(ctx context.Context) (map[string]time.Time, error) {
	coll := c.client.mc.Database(c.db).Collection(DefaultRetired)
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("readmodel retired collections: %w", translate(ctx, err))
	}
	var docs []retiredDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("readmodel retired collections: %w", translate(ctx, err))
	}
	out := make(map[string]time.Time, len(docs))
	for _, d := range docs {
		out[d.ID] = d.DropAfter
	}
	return out, nil
}

// Forget removes the record of a retired collection once it is dropped.
func (c *Catalog) Forget(ctx context.Context, carts string) error {
	coll := c.client.mc.Database(c.db).Collection(DefaultRetired)
	if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: carts}}); err != nil {
		return fmt.Errorf("readmodel forget retired %q: %w", carts, translate(ctx, err))
	}
	return nil
}
