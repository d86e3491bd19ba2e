package readmodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DefaultMeta is the collection that records which carts collection is in use.
const DefaultMeta = "readmodel_meta"

// activeID is the _id of the meta document naming the active carts collection.
const activeID = "active"

// Catalog manages the carts collections of one database: which one queries
// read and the projector writes (the active one), and dropping the others.
// A rebuild builds a fresh collection beside the active one and then
// records it as active; FerretDB cannot rename a collection over another
// (renameCollection with dropTarget is not implemented, see the
// embeddedmongo compat tests), and on MongoDB a rename would also cut
// readers off mid-query, so the switch is a pointer, not a rename:
//
//	readmodel_meta: { _id: "active", carts: string, updated_at: date }
//
// No meta document means the default collection, "carts".
type Catalog struct {
	client *Client
	db     string
	meta   *mongo.Collection
}

// Catalog returns the catalog of database db.
func (c *Client) Catalog(db string) *Catalog {
	return &Catalog{client: c, db: db, meta: c.mc.Database(db).Collection(DefaultMeta)}
}

// Store returns the read model on the named carts collection, with the
// shared checkpoints collection.
func (c *Catalog) Store(carts string) *Store {
	return c.client.Store(c.db, Collections{Carts: carts})
}

type metaDoc struct {
	ID        string    `bson:"_id"`
	Carts     string    `bson:"carts"`
	UpdatedAt time.Time `bson:"updated_at"`
}

// Active returns the name of the carts collection in use.
func (c *Catalog) Active(ctx context.Context) (string, error) {
	var d metaDoc
	err := c.meta.FindOne(ctx, bson.D{{Key: "_id", Value: activeID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return DefaultCarts, nil
	}
	if err != nil {
		return "", fmt.Errorf("readmodel active collection: %w", translate(ctx, err))
	}
	if d.Carts == "" {
		return "", errors.New("readmodel active collection: the meta document names no collection")
	}
	return d.Carts, nil
}

// SetActive records carts as the collection in use. Other query-svc
// replicas notice it when they next check Active.
func (c *Catalog) SetActive(ctx context.Context, carts string) error {
	if carts == "" {
		return errors.New("readmodel set active collection: empty name")
	}
	doc := metaDoc{ID: activeID, Carts: carts, UpdatedAt: time.Now().UTC()}
	_, err := c.meta.ReplaceOne(ctx, bson.D{{Key: "_id", Value: activeID}}, doc, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("readmodel set active collection %q: %w", carts, translate(ctx, err))
	}
	return nil
}

// Drop removes a carts collection and its projector's checkpoint (stored
// under the collection's name), e.g. the previous one after a rebuild or a
// verification's scratch collection. Dropping what does not exist is fine.
func (c *Catalog) Drop(ctx context.Context, carts string) error {
	s := c.Store(carts)
	if err := s.carts.Drop(ctx); err != nil {
		return fmt.Errorf("readmodel drop %q: %w", carts, translate(ctx, err))
	}
	if err := s.DeleteCheckpoint(ctx, carts); err != nil {
		return fmt.Errorf("readmodel drop %q: %w", carts, err)
	}
	return nil
}
