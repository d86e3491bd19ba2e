package embeddedmongo

// These tests pin down, through go.mongodb.org/mongo-driver/v2, which operations the read model
// may rely on when it runs against FerretDB v1.24.2 with the SQLite backend (tests and the local
// stack). A test that fails here after an upgrade means the table in doc.go must change, and so
// might the read model. Behaviour that FerretDB lacks is asserted as an error on purpose, so that
// gaining it is noticed too.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Error codes as MongoDB defines them (and FerretDB returns them).
const (
	codeFailedToParse    = 9
	codeDuplicateKey     = 11000
	codeNamespaceExists  = 48
	codeCommandNotFound  = 59
	codeNotImplemented   = 238
	codeNamespaceMissing = 26
)

// compatDB gives each test its own database on one server, so that the subtests of a test can run
// in parallel and share the server's start-up.
type compatDB struct {
	srv    *Server
	client *mongo.Client
}

func newCompatDB(t *testing.T) compatDB {
	t.Helper()
	s := StartForTest(t)
	return compatDB{srv: s, client: ConnectForTest(t, s)}
}

// db returns a fresh database, dropped when t ends.
func (c compatDB) db(t *testing.T) *mongo.Database {
	t.Helper()
	return c.client.Database(c.srv.NewDatabaseName(t))
}

// cart is the shape the read model stores: one document per user, guarded by version.
type cart struct {
	ID         string     `bson:"_id"`
	Version    int64      `bson:"version"`
	Items      []cartLine `bson:"items"`
	CheckedOut bool       `bson:"checked_out"`
	UpdatedAt  time.Time  `bson:"updated_at"`
}

type cartLine struct {
	SKU      string       `bson:"sku"`
	Quantity int64        `bson:"quantity"`
	Options  []lineOption `bson:"options"`
}

type lineOption struct {
	Name  string `bson:"name"`
	Value string `bson:"value"`
}

func cartAt(id string, version int64) cart {
	return cart{
		ID:        id,
		Version:   version,
		Items:     []cartLine{{SKU: "sku-1", Quantity: version, Options: []lineOption{}}},
		UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC),
	}
}

func insertCart(t *testing.T, coll *mongo.Collection, c cart) {
	t.Helper()
	if _, err := coll.InsertOne(t.Context(), c); err != nil {
		t.Fatalf("insert %s: %v", c.ID, err)
	}
}

func findVersion(t *testing.T, coll *mongo.Collection, id string) int64 {
	t.Helper()
	var got cart
	if err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil {
		t.Fatalf("find %s: %v", id, err)
	}
	return got.Version
}

// wantDuplicateKey asserts the error the read model treats as "the version guard did not match
// an existing document": a write error with code 11000 that mongo.IsDuplicateKeyError recognises.
func wantDuplicateKey(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want duplicate key (11000)")
	}
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("mongo.IsDuplicateKeyError(%v) = false", err)
	}
	var we mongo.WriteException
	if !errors.As(err, &we) {
		t.Fatalf("error %T (%v) is not a mongo.WriteException", err, err)
	}
	if len(we.WriteErrors) != 1 || we.WriteErrors[0].Code != codeDuplicateKey {
		t.Fatalf("write errors = %+v, want one with code %d", we.WriteErrors, codeDuplicateKey)
	}
}

// wantCommandError asserts a server error with the given code.
func wantCommandError(t *testing.T, err error, code int32) {
	t.Helper()
	var ce mongo.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("error %T (%v) is not a mongo.CommandError with code %d", err, err, code)
	}
	if ce.Code != code {
		t.Fatalf("command error code = %d (%v), want %d", ce.Code, err, code)
	}
}

// Case 1: the version-guarded replace, filter {_id, version: N}, upsert.
func TestCompatReplaceOneExactVersionGuard(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)
	upsert := options.Replace().SetUpsert(true)
	// apply replaces the document at version v-1 with the document at version v.
	apply := func(t *testing.T, coll *mongo.Collection, id string, v int64) (*mongo.UpdateResult, error) {
		t.Helper()
		return coll.ReplaceOne(t.Context(), bson.D{{Key: "_id", Value: id}, {Key: "version", Value: v - 1}}, cartAt(id, v), upsert)
	}

	t.Run("missing document is inserted with the filter's _id", func(t *testing.T) {
		t.Parallel()
		coll := c.db(t).Collection("carts")
		res, err := apply(t, coll, "u1", 1)
		if err != nil {
			t.Fatal(err)
		}
		if res.MatchedCount != 0 || res.UpsertedCount != 1 || res.UpsertedID != "u1" {
			t.Fatalf("result = %+v, want one upsert of u1", res)
		}
		if v := findVersion(t, coll, "u1"); v != 1 {
			t.Fatalf("version = %d, want 1", v)
		}
	})
	t.Run("matching version replaces", func(t *testing.T) {
		t.Parallel()
		coll := c.db(t).Collection("carts")
		insertCart(t, coll, cartAt("u1", 1))
		res, err := apply(t, coll, "u1", 2)
		if err != nil {
			t.Fatal(err)
		}
		if res.MatchedCount != 1 || res.ModifiedCount != 1 || res.UpsertedCount != 0 {
			t.Fatalf("result = %+v, want one match and modification", res)
		}
		if v := findVersion(t, coll, "u1"); v != 2 {
			t.Fatalf("version = %d, want 2", v)
		}
	})
	// Redelivery of an applied event and a gap both end as 11000: the error alone does not say
	// which, so the read model must read the document to tell them apart.
	for _, tc := range []struct {
		name string
		v    int64
	}{{"replayed event (version already applied) is a duplicate key", 3}, {"gap (version ahead) is a duplicate key", 9}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			coll := c.db(t).Collection("carts")
			insertCart(t, coll, cartAt("u1", 3))
			_, err := apply(t, coll, "u1", tc.v)
			wantDuplicateKey(t, err)
			if v := findVersion(t, coll, "u1"); v != 3 {
				t.Fatalf("version = %d after failed guard, want 3 (unchanged)", v)
			}
		})
	}
}

// Case 2: filter {_id, version: {$lt: N}}, upsert: "replace if older".
func TestCompatReplaceOneLessThanGuard(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)
	upsert := options.Replace().SetUpsert(true)
	tests := []struct {
		name        string
		stored      int64 // 0: no document
		write       int64
		wantDupKey  bool
		wantVersion int64
	}{
		{name: "missing document is inserted", write: 4, wantVersion: 4},
		{name: "older document is replaced", stored: 2, write: 4, wantVersion: 4},
		{name: "same version is a duplicate key", stored: 4, write: 4, wantDupKey: true, wantVersion: 4},
		{name: "newer document is a duplicate key", stored: 6, write: 4, wantDupKey: true, wantVersion: 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			coll := c.db(t).Collection("carts")
			if tc.stored > 0 {
				insertCart(t, coll, cartAt("u1", tc.stored))
			}
			filter := bson.D{{Key: "_id", Value: "u1"}, {Key: "version", Value: bson.D{{Key: "$lt", Value: tc.write}}}}
			_, err := coll.ReplaceOne(t.Context(), filter, cartAt("u1", tc.write), upsert)
			if tc.wantDupKey {
				wantDuplicateKey(t, err)
			} else if err != nil {
				t.Fatal(err)
			}
			if v := findVersion(t, coll, "u1"); v != tc.wantVersion {
				t.Fatalf("version = %d, want %d", v, tc.wantVersion)
			}
		})
	}
}

// Case 3: BulkWrite of version-guarded ReplaceOne models. FerretDB differs from MongoDB here:
// it ignores "ordered" and always stops at the first failing write (earlier writes stay applied,
// there is no transaction), it reports every write error at index 0, and it numbers UpsertedIDs
// by upsert rather than by model. Portable rule for the read model: on a BulkWriteException,
// retry that batch one write at a time (each write is idempotent thanks to the version guard)
// and never use the error's Index or Request to find the failing model.
func TestCompatBulkWriteReplaceOne(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)
	// models: u1 1→2 (ok), u2 guard fails when stored at 5, u3 inserted.
	models := func() []mongo.WriteModel {
		m := func(id string, v int64) mongo.WriteModel {
			return mongo.NewReplaceOneModel().
				SetFilter(bson.D{{Key: "_id", Value: id}, {Key: "version", Value: v - 1}}).
				SetReplacement(cartAt(id, v)).
				SetUpsert(true)
		}
		return []mongo.WriteModel{m("u1", 2), m("u2", 2), m("u3", 1)}
	}

	t.Run("all succeed", func(t *testing.T) {
		t.Parallel()
		coll := c.db(t).Collection("carts")
		insertCart(t, coll, cartAt("u1", 1))
		insertCart(t, coll, cartAt("u2", 1))
		res, err := coll.BulkWrite(t.Context(), models())
		if err != nil {
			t.Fatal(err)
		}
		if res.MatchedCount != 2 || res.ModifiedCount != 2 || res.UpsertedCount != 1 {
			t.Fatalf("result = %+v, want 2 matched/modified and 1 upserted", res)
		}
		// MongoDB would key u3 by its model index, 2.
		if len(res.UpsertedIDs) != 1 || res.UpsertedIDs[0] != "u3" {
			t.Fatalf("UpsertedIDs = %v, want map[0:u3] (FerretDB numbers upserts, not models)", res.UpsertedIDs)
		}
		for id, want := range map[string]int64{"u1": 2, "u2": 2, "u3": 1} {
			if v := findVersion(t, coll, id); v != want {
				t.Errorf("%s: version %d, want %d", id, v, want)
			}
		}
	})

	for _, ordered := range []bool{true, false} {
		name := "unordered"
		if ordered {
			name = "ordered"
		}
		t.Run(name+" stops at the duplicate key, reported at index 0", func(t *testing.T) {
			t.Parallel()
			coll := c.db(t).Collection("carts")
			insertCart(t, coll, cartAt("u1", 1))
			insertCart(t, coll, cartAt("u2", 5))

			_, err := coll.BulkWrite(t.Context(), models(), options.BulkWrite().SetOrdered(ordered))
			var bwe mongo.BulkWriteException
			if !errors.As(err, &bwe) {
				t.Fatalf("error %T (%v) is not a mongo.BulkWriteException", err, err)
			}
			if !mongo.IsDuplicateKeyError(err) {
				t.Fatalf("mongo.IsDuplicateKeyError(%v) = false", err)
			}
			// MongoDB would say index 1.
			if len(bwe.WriteErrors) != 1 || bwe.WriteErrors[0].Index != 0 || bwe.WriteErrors[0].Code != codeDuplicateKey {
				t.Fatalf("write errors = %v, want one at index 0 with code %d", bwe.WriteErrors, codeDuplicateKey)
			}
			// u1 (before the failure) is applied, u3 (after it) is not, even unordered, where
			// MongoDB would apply u3.
			for id, want := range map[string]int64{"u1": 2, "u2": 5, "u3": 0} {
				var got cart
				err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: id}}).Decode(&got)
				switch {
				case want == 0 && !errors.Is(err, mongo.ErrNoDocuments):
					t.Errorf("%s: err = %v (version %d), want absent", id, err, got.Version)
				case want != 0 && (err != nil || got.Version != want):
					t.Errorf("%s: version %d, err %v; want version %d", id, got.Version, err, want)
				}
			}
		})
	}
}

// Case 4: queries and collection management.
func TestCompatQueriesAndCollections(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)
	seed := func(t *testing.T) *mongo.Collection {
		t.Helper()
		coll := c.db(t).Collection("carts")
		for i, id := range []string{"u3", "u1", "u4", "u2"} {
			cc := cartAt(id, int64(i+1))
			cc.CheckedOut = i%2 == 0
			insertCart(t, coll, cc)
		}
		return coll
	}

	t.Run("FindOne", func(t *testing.T) {
		t.Parallel()
		coll := seed(t)
		var got cart
		if err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: "u4"}}).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.ID != "u4" || got.Version != 3 {
			t.Fatalf("got %+v, want u4 at version 3", got)
		}
		err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: "nobody"}}).Err()
		if !errors.Is(err, mongo.ErrNoDocuments) {
			t.Fatalf("FindOne(missing) = %v, want mongo.ErrNoDocuments", err)
		}
	})
	t.Run("Find with filter, sort and limit", func(t *testing.T) {
		t.Parallel()
		coll := seed(t)
		cur, err := coll.Find(t.Context(),
			bson.D{{Key: "version", Value: bson.D{{Key: "$gte", Value: 2}}}},
			options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(2))
		if err != nil {
			t.Fatal(err)
		}
		var got []cart
		if err := cur.All(t.Context(), &got); err != nil {
			t.Fatal(err)
		}
		ids := make([]string, 0, len(got))
		for _, g := range got {
			ids = append(ids, g.ID)
		}
		if !slices.Equal(ids, []string{"u4", "u2"}) {
			t.Fatalf("ids = %v, want [u4 u2]", ids)
		}
	})
	t.Run("CountDocuments", func(t *testing.T) {
		t.Parallel()
		coll := seed(t)
		n, err := coll.CountDocuments(t.Context(), bson.D{{Key: "checked_out", Value: true}})
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("count = %d, want 2", n)
		}
	})
	t.Run("DeleteMany", func(t *testing.T) {
		t.Parallel()
		coll := seed(t)
		res, err := coll.DeleteMany(t.Context(), bson.D{{Key: "version", Value: bson.D{{Key: "$lte", Value: 2}}}})
		if err != nil {
			t.Fatal(err)
		}
		if res.DeletedCount != 2 {
			t.Fatalf("deleted = %d, want 2", res.DeletedCount)
		}
		n, err := coll.CountDocuments(t.Context(), bson.D{})
		if err != nil || n != 2 {
			t.Fatalf("count after delete = %d, %v; want 2", n, err)
		}
	})
	t.Run("Drop and ListCollectionNames", func(t *testing.T) {
		t.Parallel()
		coll := seed(t)
		db := coll.Database()
		insertCart(t, db.Collection("other"), cartAt("x", 1))
		names, err := db.ListCollectionNames(t.Context(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"carts", "other"}) {
			t.Fatalf("collections = %v, want [carts other]", names)
		}
		if err := coll.Drop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := coll.Drop(t.Context()); err != nil {
			t.Fatalf("dropping a missing collection: %v, want nil (as on MongoDB)", err)
		}
		names, err = db.ListCollectionNames(t.Context(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names, []string{"other"}) {
			t.Fatalf("collections after drop = %v, want [other]", names)
		}
	})
	// renameCollection works only without dropTarget and only within one database; a rebuild
	// that swaps collections must drop the target first (not atomic on FerretDB).
	t.Run("renameCollection", func(t *testing.T) {
		t.Parallel()
		coll := seed(t)
		db := coll.Database()
		admin := c.client.Database("admin")
		rename := func(from, to string, dropTarget bool) error {
			return admin.RunCommand(t.Context(), bson.D{
				{Key: "renameCollection", Value: db.Name() + "." + from},
				{Key: "to", Value: db.Name() + "." + to},
				{Key: "dropTarget", Value: dropTarget},
			}).Err()
		}
		insertCart(t, db.Collection("carts_next"), cartAt("new", 1))

		wantCommandError(t, rename("carts_next", "carts", true), codeNotImplemented)
		wantCommandError(t, rename("carts_next", "carts", false), codeNamespaceExists)
		wantCommandError(t, rename("nothing", "carts_x", false), codeNamespaceMissing)

		if err := coll.Drop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := rename("carts_next", "carts", false); err != nil {
			t.Fatalf("rename onto a dropped target: %v", err)
		}
		if v := findVersion(t, coll, "new"); v != 1 {
			t.Fatalf("renamed collection: version = %d, want 1", v)
		}
	})
}

// Case 5: the checkpoint document: $set + $inc with upsert.
func TestCompatCheckpointUpdateOneUpsert(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)
	type checkpoint struct {
		ID      string `bson:"_id"`
		Commit  uint64 `bson:"commit"`
		Prepare uint64 `bson:"prepare"`
		Saves   int64  `bson:"saves"`
	}
	save := func(t *testing.T, coll *mongo.Collection, commit uint64) (*mongo.UpdateResult, error) {
		return coll.UpdateOne(t.Context(),
			bson.D{{Key: "_id", Value: "projector"}},
			bson.D{
				{Key: "$set", Value: bson.D{{Key: "commit", Value: commit}, {Key: "prepare", Value: commit}}},
				{Key: "$inc", Value: bson.D{{Key: "saves", Value: int64(1)}}},
			},
			options.UpdateOne().SetUpsert(true))
	}

	t.Run("insert then update", func(t *testing.T) {
		t.Parallel()
		coll := c.db(t).Collection("checkpoints")
		res, err := save(t, coll, 100)
		if err != nil {
			t.Fatal(err)
		}
		if res.UpsertedCount != 1 || res.UpsertedID != "projector" {
			t.Fatalf("first save = %+v, want an upsert of projector", res)
		}
		// Positions are uint64 in the client; the driver stores them as int64, exact up to 2^63-1.
		const big = uint64(1)<<62 + 7
		res, err = save(t, coll, big)
		if err != nil {
			t.Fatal(err)
		}
		if res.MatchedCount != 1 || res.ModifiedCount != 1 {
			t.Fatalf("second save = %+v, want one match and modification", res)
		}
		var got checkpoint
		if err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: "projector"}}).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got != (checkpoint{ID: "projector", Commit: big, Prepare: big, Saves: 2}) {
			t.Fatalf("checkpoint = %+v, want commit=prepare=%d saves=2", got, big)
		}
	})
	// Not FerretDB but the driver: a uint64 above 2^63-1 cannot be encoded at all.
	t.Run("uint64 above MaxInt64 is rejected by the driver", func(t *testing.T) {
		t.Parallel()
		coll := c.db(t).Collection("checkpoints")
		_, err := save(t, coll, uint64(1)<<63)
		if err == nil || !strings.Contains(err.Error(), "overflows int64") {
			t.Fatalf("save(2^63) = %v, want an overflows int64 error", err)
		}
	})
}

// Case 6: indexes.
func TestCompatIndexes(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)

	t.Run("plain index is created and listed", func(t *testing.T) {
		t.Parallel()
		coll := c.db(t).Collection("carts")
		name, err := coll.Indexes().CreateOne(t.Context(), mongo.IndexModel{Keys: bson.D{{Key: "updated_at", Value: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		specs, err := coll.Indexes().ListSpecifications(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range specs {
			names = append(names, s.Name)
		}
		slices.Sort(names)
		if name != "updated_at_1" || !slices.Equal(names, []string{"_id_", "updated_at_1"}) {
			t.Fatalf("created %q, listed %v; want updated_at_1 beside _id_", name, names)
		}
	})
	t.Run("unique index rejects a duplicate with 11000", func(t *testing.T) {
		t.Parallel()
		coll := c.db(t).Collection("orders")
		if _, err := coll.Indexes().CreateOne(t.Context(), mongo.IndexModel{
			Keys:    bson.D{{Key: "command_id", Value: 1}},
			Options: options.Index().SetUnique(true),
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "command_id", Value: "c1"}}); err != nil {
			t.Fatal(err)
		}
		_, err := coll.InsertOne(t.Context(), bson.D{{Key: "command_id", Value: "c1"}})
		wantDuplicateKey(t, err)
	})
}

// Case 7: the read model's document shape round-trips through bson struct tags, with exact
// int64 values (beyond float64 precision), UTC milliseconds, bools and nested arrays.
func TestCompatDocumentRoundTrip(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)
	coll := c.db(t).Collection("carts")
	want := cart{
		ID:         "u1",
		Version:    1<<53 + 1,
		CheckedOut: true,
		UpdatedAt:  time.Date(2026, 11, 26, 7, 8, 9, 123e6, time.UTC),
		Items: []cartLine{
			{SKU: "a", Quantity: -3, Options: []lineOption{{Name: "size", Value: "L"}, {Name: "colour", Value: "red"}}},
			{SKU: "b", Quantity: 1 << 40, Options: []lineOption{}},
		},
	}
	insertCart(t, coll, want)

	var got cart
	if err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: "u1"}}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) || got.UpdatedAt.Location() != time.UTC {
		t.Errorf("updated_at = %v, want %v in UTC", got.UpdatedAt, want.UpdatedAt)
	}
	got.UpdatedAt = want.UpdatedAt
	if !equalCarts(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}

	// The stored BSON types are the ones written, not a numeric widening/narrowing.
	var raw bson.Raw
	if err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: "u1"}}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	for path, wantType := range map[string]bson.Type{
		"version":     bson.TypeInt64,
		"checked_out": bson.TypeBoolean,
		"updated_at":  bson.TypeDateTime,
		"items":       bson.TypeArray,
	} {
		if got := raw.Lookup(path).Type; got != wantType {
			t.Errorf("%s stored as %v, want %v", path, got, wantType)
		}
	}
	if got := raw.Lookup("items", "0", "quantity").Type; got != bson.TypeInt64 {
		t.Errorf("items.0.quantity stored as %v, want int64", got)
	}
}

func equalCarts(a, b cart) bool {
	return a.ID == b.ID && a.Version == b.Version && a.CheckedOut == b.CheckedOut && a.UpdatedAt.Equal(b.UpdatedAt) &&
		slices.EqualFunc(a.Items, b.Items, func(x, y cartLine) bool {
			return x.SKU == y.SKU && x.Quantity == y.Quantity && slices.Equal(x.Options, y.Options)
		})
}

// Case 8: what FerretDB does not offer. The read model must not depend on these.
func TestCompatUnsupported(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)

	t.Run("change streams", func(t *testing.T) {
		t.Parallel()
		coll := c.db(t).Collection("carts")
		insertCart(t, coll, cartAt("u1", 1))
		cs, err := coll.Watch(t.Context(), mongo.Pipeline{})
		if err == nil {
			_ = cs.Close(t.Context())
			t.Fatal("Watch succeeded; FerretDB now supports change streams: update doc.go")
		}
		wantCommandError(t, err, codeNotImplemented)
	})
	t.Run("transactions", func(t *testing.T) {
		t.Parallel()
		coll := c.db(t).Collection("carts")
		sess, err := c.client.StartSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.EndSession(t.Context())
		_, err = sess.WithTransaction(t.Context(), func(ctx context.Context) (any, error) {
			return coll.InsertOne(ctx, cartAt("u1", 1))
		})
		// The driver sends startTransaction on the first write; FerretDB rejects the field.
		wantCommandError(t, err, codeFailedToParse)
		if !strings.Contains(err.Error(), "startTransaction") {
			t.Fatalf("error %v does not name startTransaction", err)
		}
		if err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: "u1"}}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
			t.Fatalf("document written by the failed transaction: FindOne = %v, want mongo.ErrNoDocuments", err)
		}
	})
}

// Case 9: which filters FerretDB pushes down to SQL (its explain reports filterPushdown): only
// exactly {_id: <string>}. Everything else, {_id: {$in: [...]}} and the version guard {_id,
// version} included, reads and decodes every document of the collection, so its cost grows with
// the collection; the read model's PointReads and IDOnlyFilter options exist for this.
func TestCompatFilterPushdown(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)
	db := c.db(t)
	insertCart(t, db.Collection("carts"), cartAt("u1", 1))
	tests := []struct {
		name   string
		filter bson.D
		want   bool
	}{
		{"_id alone", bson.D{{Key: "_id", Value: "u1"}}, true},
		{"_id $in", bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"u1", "u2"}}}}}, false},
		{"_id and version", bson.D{{Key: "_id", Value: "u1"}, {Key: "version", Value: int64(1)}}, false},
		{"_id $eq", bson.D{{Key: "_id", Value: bson.D{{Key: "$eq", Value: "u1"}}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res struct {
				FilterPushdown bool `bson:"filterPushdown"`
			}
			cmd := bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: "carts"}, {Key: "filter", Value: tt.filter}}}}
			if err := db.RunCommand(t.Context(), cmd).Decode(&res); err != nil {
				t.Fatal(err)
			}
			if res.FilterPushdown != tt.want {
				t.Errorf("filterPushdown = %v, want %v", res.FilterPushdown, tt.want)
			}
		})
	}
}

// Case 10: a conditional write is not atomic. FerretDB evaluates a filter other than {_id: v}
// itself: it reads the matching documents, then writes each back by _id in a separate SQLite
// transaction, so two writers with the same condition ({_id, epoch: 0}, a compare-and-set) can
// both match and both write; MongoDB lets exactly one match. Only the unique _id index, i.e. an
// insert, arbitrates between concurrent writers atomically. The read model's version guard is
// therefore no guard against a second writer on FerretDB (hence its single fenced writer), and
// its lease arbitrates takeovers with inserts.
func TestCompatConditionalUpdateIsNotAtomic(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)
	coll := c.db(t).Collection("leases")
	const writers, rounds = 8, 40
	worst := 0
	for round := range rounds {
		id := "lease-" + itoa(round)
		if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: id}, {Key: "epoch", Value: int64(0)}}); err != nil {
			t.Fatal(err)
		}
		matched := make(chan int64, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				<-start
				res, err := coll.UpdateOne(t.Context(),
					bson.D{{Key: "_id", Value: id}, {Key: "epoch", Value: int64(0)}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "epoch", Value: int64(1)}, {Key: "holder", Value: w}}}})
				if err != nil {
					t.Error(err)
					return
				}
				matched <- res.MatchedCount
			})
		}
		close(start)
		wg.Wait()
		close(matched)
		n := 0
		for m := range matched {
			n += int(m)
		}
		worst = max(worst, n)
		if n > 1 {
			break
		}
	}
	if worst <= 1 {
		t.Fatalf("in %d rounds of %d concurrent compare-and-set updates at most one matched: FerretDB's conditional updates may be atomic now (update doc.go, the read model's IDOnlyFilter and lease docs)", rounds, writers)
	}
	t.Logf("%d concurrent compare-and-set updates of one document matched", worst)
}

// Case 11: no update pipelines, hence no server clock ($$NOW) in a write: an update given as a
// pipeline fails. The read model's lease therefore compares expires_at with the callers' clocks.
func TestCompatNoUpdatePipeline(t *testing.T) {
	t.Parallel()
	c := newCompatDB(t)
	coll := c.db(t).Collection("leases")
	insertCart(t, coll, cartAt("u1", 1))
	_, err := coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: "u1"}},
		mongo.Pipeline{{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: "$$NOW"}}}}})
	if err == nil {
		t.Fatal("an update pipeline with $$NOW worked: FerretDB supports them now (the lease could use the server's clock)")
	}
	t.Logf("update pipeline: %v", err)
}
