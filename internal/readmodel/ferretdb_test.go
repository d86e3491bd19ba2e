package readmodel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/projection"
)

// sqlitePlan returns what FerretDB's explain says SQLite does for a find by
// _id in collection coll (its queryPlanner holds SQLite's query plan).
func sqlitePlan(t *testing.T, c *Client, db, coll, id string) string {
	t.Helper()
	var res bson.M
	cmd := bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: coll}, {Key: "filter", Value: bson.D{{Key: "_id", Value: id}}}}}}
	if err := c.mc.Database(db).RunCommand(ctxT(t), cmd).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(res["queryPlanner"])
}

// TestCollectionWrittenIndexesNewCollections: with embeddedmongo's
// EnsureIndexes as the hook, a carts collection the Store creates (as a
// rebuild does) gets the index that FerretDB's _id filter uses.
func TestCollectionWrittenIndexesNewCollections(t *testing.T) {
	t.Parallel()
	srv := embeddedmongo.StartForTest(t)
	opts := FerretDBCompat()
	calls := 0
	opts.CollectionWritten = func(ctx context.Context, db string) error {
		calls++
		return srv.EnsureIndexes(ctx, db)
	}
	c := connectWith(t, srv.URI(), opts)
	s := c.Catalog("cart").Store("carts_20261202T080000")
	mustWrite(t, s, projection.CartWrite{Doc: sampleDoc("u1", 0), Create: true})
	mustWrite(t, s, projection.CartWrite{Doc: sampleDoc("u1", 1), ExpectedVersion: 0})
	if calls != 1 {
		t.Errorf("hook called %d times, want once per Store", calls)
	}
	if plan := sqlitePlan(t, c, "cart", "carts_20261202T080000", "u1"); !strings.Contains(plan, "USING INDEX") {
		t.Errorf("plan of a find by _id = %s, want an index search", plan)
	}
}

func TestCollectionWrittenErrorIsReturnedAndRetried(t *testing.T) {
	t.Parallel()
	srv := embeddedmongo.StartForTest(t)
	opts := FerretDBCompat()
	fail := errors.New("no index for you")
	calls := 0
	opts.CollectionWritten = func(ctx context.Context, db string) error {
		calls++
		if calls == 1 {
			return fail
		}
		return nil
	}
	s := connectWith(t, srv.URI(), opts).Store("cart", Collections{})
	if _, err := s.WriteCarts(ctxT(t), []projection.CartWrite{{Doc: sampleDoc("u1", 0), Create: true}}); !errors.Is(err, fail) {
		t.Errorf("WriteCarts = %v, want the hook's error", err)
	}
	mustWrite(t, s, projection.CartWrite{Doc: sampleDoc("u1", 1), ExpectedVersion: 0})
	mustWrite(t, s, projection.CartWrite{Doc: sampleDoc("u1", 2), ExpectedVersion: 1})
	if calls != 2 {
		t.Errorf("hook called %d times, want 2 (until it succeeds)", calls)
	}
}

// BenchmarkReplaceOnFerretDB measures the projector's steady state on the
// embedded FerretDB: WriteCarts of one replace of an existing document, by
// collection size. READMODEL_BENCH=before measures the configuration the
// project had: filter {_id, version}, no expression index; the default
// (after) is FerretDBCompat (filter {_id} after a read by _id) with
// embeddedmongo's index. Same names both ways, for benchstat:
//
//	READMODEL_BENCH=before go test -run '^$' -bench ReplaceOnFerretDB -count 6 ./internal/readmodel/ > before.txt
//	go test -run '^$' -bench ReplaceOnFerretDB -count 6 ./internal/readmodel/ > after.txt
//	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da before.txt after.txt
//
// READMODEL_BENCH_DOCS=1000,10000,100000 chooses the sizes (default
// 1000,10000). Measured on the 2-core box, busy with other work (medians
// of 6; before at 100,000 one run of 3): before 79 ms, 0.90 s, 5.9 s; after
// 3.1, 3.2, 3.3 ms.
func BenchmarkReplaceOnFerretDB(b *testing.B) {
	before := os.Getenv("READMODEL_BENCH") == "before"
	sizes := []int{1000, 10000}
	if v := os.Getenv("READMODEL_BENCH_DOCS"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			var n int
			if _, err := fmt.Sscan(f, &n); err != nil {
				b.Fatalf("READMODEL_BENCH_DOCS: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, docs := range sizes {
		b.Run(fmt.Sprintf("docs=%d", docs), func(b *testing.B) {
			srv := embeddedmongo.StartForTest(b)
			opts := FerretDBCompat()
			if before {
				opts.IDOnlyFilter = false
			}
			c, err := ConnectWith(context.Background(), srv.URI(), opts)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close(context.Background()) })
			s := c.Store("cart", Collections{})
			seed := make([]any, 0, 1000)
			flush := func() {
				if len(seed) > 0 {
					if _, err := s.carts.InsertMany(b.Context(), seed); err != nil {
						b.Fatal(err)
					}
					seed = seed[:0]
				}
			}
			for u := range docs {
				seed = append(seed, toDoc(sampleDoc(fmt.Sprintf("user-%06d", u), 0)))
				if len(seed) == cap(seed) {
					flush()
				}
			}
			flush()
			if !before {
				if err := srv.EnsureIndexes(b.Context(), "cart"); err != nil {
					b.Fatal(err)
				}
			}
			versions := make([]int64, docs)
			i := 0
			for b.Loop() {
				// Spread over the collection, so that no page stays hot.
				u := (i * 7919) % docs
				i++
				w := projection.CartWrite{Doc: sampleDoc(fmt.Sprintf("user-%06d", u), versions[u]+1), ExpectedVersion: versions[u]}
				conflicts, err := s.WriteCarts(b.Context(), []projection.CartWrite{w})
				if err != nil || len(conflicts) != 0 {
					b.Fatalf("WriteCarts = %v, %v", conflicts, err)
				}
				versions[u]++
			}
		})
	}
}
