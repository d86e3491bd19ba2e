package embeddedmongo

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// The statements FerretDB 1.24 runs for a filter of exactly {_id: v} (backends/sqlite in its
// module: Query and UpdateAll), with the table name left open.
const (
	ferretSelectByID = `SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`
	ferretUpdateByID = `UPDATE %q SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->'$._id' = ?`
)

// queryPlans returns SQLite's EXPLAIN QUERY PLAN of FerretDB's select and update by _id on the
// table of collection coll of database db.
func queryPlans(t *testing.T, s *Server, db, coll string) (sel, upd string) {
	t.Helper()
	sdb, err := openFile(s.databaseFile(db))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var table string
	if err := sdb.QueryRowContext(t.Context(), fmt.Sprintf(`SELECT table_name FROM %q WHERE name = ?`, metadataTable), coll).Scan(&table); err != nil {
		t.Fatalf("table of %s.%s: %v", db, coll, err)
	}
	plan := func(q string, args ...any) string {
		rows, err := sdb.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+fmt.Sprintf(q, table), args...)
		if err != nil {
			t.Fatalf("explain %s: %v", q, err)
		}
		defer rows.Close()
		var details []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			details = append(details, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(details, "; ")
	}
	return plan(ferretSelectByID, `"u1"`), plan(ferretUpdateByID, `{}`, `"u1"`)
}

func wantScan(t *testing.T, what, plan string) {
	t.Helper()
	if !strings.HasPrefix(plan, "SCAN ") {
		t.Errorf("%s: plan %q, want SCAN (FerretDB's own _id index does not match its filter: if this fails, FerretDB changed and EnsureIndexes may be unneeded)", what, plan)
	}
}

func wantIndexSearch(t *testing.T, what, plan string) {
	t.Helper()
	if !strings.HasPrefix(plan, "SEARCH ") || !strings.Contains(plan, "USING INDEX") || !strings.Contains(plan, idIndexSuffix) {
		t.Errorf("%s: plan %q, want SEARCH ... USING INDEX ...%s", what, plan, idIndexSuffix)
	}
}

func seedCollection(t *testing.T, client *mongo.Client, db, coll string, n int) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = cartAt(benchID(i), 0)
	}
	if _, err := client.Database(db).Collection(coll).InsertMany(t.Context(), docs); err != nil {
		t.Fatal(err)
	}
}

// TestEnsureIndexesTurnsScansIntoSearches proves the index is the one FerretDB's SQL can use:
// SQLite's plan for FerretDB's select and update by _id goes from SCAN to SEARCH USING INDEX,
// for the collections that exist and for one created afterwards (as a rebuild does).
func TestEnsureIndexesTurnsScansIntoSearches(t *testing.T) {
	t.Parallel()
	s := StartForTest(t)
	client := ConnectForTest(t, s)
	if err := s.EnsureIndexes(t.Context(), "nothing_yet"); err != nil {
		t.Errorf("EnsureIndexes of a database that does not exist: %v", err)
	}
	seedCollection(t, client, "cart", "carts", 10)
	seedCollection(t, client, "cart", "checkpoints", 1)

	sel, upd := queryPlans(t, s, "cart", "carts")
	wantScan(t, "select before", sel)
	wantScan(t, "update before", upd)

	if err := s.EnsureIndexes(t.Context(), "cart"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureIndexes(t.Context(), "cart"); err != nil {
		t.Fatalf("EnsureIndexes again: %v", err)
	}
	for _, coll := range []string{"carts", "checkpoints"} {
		sel, upd := queryPlans(t, s, "cart", coll)
		wantIndexSearch(t, coll+" select", sel)
		wantIndexSearch(t, coll+" update", upd)
	}

	// A rebuild's collection, created later, needs the call again.
	seedCollection(t, client, "cart", "carts_20261202T080000", 3)
	sel, _ = queryPlans(t, s, "cart", "carts_20261202T080000")
	wantScan(t, "new collection before", sel)
	if err := s.EnsureAllIndexes(t.Context()); err != nil {
		t.Fatal(err)
	}
	sel, upd = queryPlans(t, s, "cart", "carts_20261202T080000")
	wantIndexSearch(t, "new collection select", sel)
	wantIndexSearch(t, "new collection update", upd)

	// FerretDB keeps working with the extra index: writes by _id, a drop and a re-creation.
	coll := client.Database("cart").Collection("carts")
	if _, err := coll.ReplaceOne(t.Context(), map[string]any{"_id": benchID(3)}, cartAt(benchID(3), 1)); err != nil {
		t.Fatal(err)
	}
	if v := findVersion(t, coll, benchID(3)); v != 1 {
		t.Errorf("version after replace = %d, want 1", v)
	}
	if err := coll.Drop(t.Context()); err != nil {
		t.Fatal(err)
	}
	seedCollection(t, client, "cart", "carts", 2)
	if err := s.EnsureIndexes(t.Context(), "cart"); err != nil {
		t.Fatal(err)
	}
	sel, _ = queryPlans(t, s, "cart", "carts")
	wantIndexSearch(t, "re-created collection", sel)
}

// TestIndexIntervalIndexesNewCollections: with Config.IndexInterval the server indexes a
// collection created after start without anyone calling EnsureIndexes.
func TestIndexIntervalIndexesNewCollections(t *testing.T) {
	t.Parallel()
	s, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), IndexInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	client := ConnectForTest(t, s)
	seedCollection(t, client, "cart", "carts_later", 3)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		sel, _ := queryPlans(t, s, "cart", "carts_later")
		if strings.Contains(sel, idIndexSuffix) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after 10 s the plan is still %q", sel)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
