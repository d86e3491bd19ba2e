//go:build !race

package embeddedmongo

// This case lives in its own file because it cannot run under -race: there FerretDB's bulk update
// slows down superlinearly with the number of matching statements (99 take about 10 s instead of
// 1 s, see doc.go), which leaves no timeout that both tells a deadlock from slowness and keeps the
// suite fast.

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Case 3b: a single update command (one BulkWrite, ordered or not) whose statements match 100 or
// more existing documents never returns: FerretDB keeps each statement's SQLite cursor open until
// the command ends and its per-database pool has 100 connections. The database then stays wedged
// until the server closes. The read model must split BulkWrite batches (50 is safe and as fast as
// larger batches here). Upserts that match nothing do not hold a cursor and are not limited.
func TestCompatBulkWriteDeadlocksAt100Matches(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a deadlock to time out and for the server to close (about 8 s)")
	}
	t.Parallel()
	c := newCompatDB(t)
	bulk := func(t *testing.T, n int) error {
		t.Helper()
		coll := c.db(t).Collection("carts")
		seed := make([]any, n)
		models := make([]mongo.WriteModel, n)
		for i := range n {
			id := benchID(i)
			seed[i] = cartAt(id, 1)
			models[i] = mongo.NewReplaceOneModel().
				SetFilter(bson.D{{Key: "_id", Value: id}}). // cheap: pushed down to SQL; the guard's filter deadlocks just the same
				SetReplacement(cartAt(id, 2)).
				SetUpsert(true)
		}
		if _, err := coll.InsertMany(t.Context(), seed); err != nil {
			t.Fatal(err)
		}
		// Generous: 99 such writes take well under a second even under -race, and a slow box can
		// only make the 100 case pass for the wrong reason, never fail it.
		// 99 such writes take about 1 s without -race; a slow box can only make the 100 case pass
		// for the wrong reason, never fail it.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := coll.BulkWrite(ctx, models)
		return err
	}

	// Sequential on purpose: the second case wedges a database of this server.
	t.Run("99 matches work", func(t *testing.T) {
		if err := bulk(t, 99); err != nil {
			t.Fatalf("BulkWrite of 99 matching models: %v", err)
		}
	})
	t.Run("100 matches never return", func(t *testing.T) {
		err := bulk(t, 100)
		if err == nil {
			t.Fatal("BulkWrite of 100 matching models returned; FerretDB no longer deadlocks: update doc.go")
		}
		if !mongo.IsTimeout(err) {
			t.Fatalf("BulkWrite of 100 matching models = %v, want a client-side timeout", err)
		}
	})
}
