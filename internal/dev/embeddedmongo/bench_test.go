package embeddedmongo

import (
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// BenchmarkStart measures what a test pays for its own server (Start, which includes a driver
// ping, plus Close).
func BenchmarkStart(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		s, err := Start(b.Context(), Config{Listen: "127.0.0.1:0", DataDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplaceOneUpsert measures the read model's hot path, one upsert of one document per
// call, by filter shape and collection size. FerretDB's SQLite backend pushes a filter down to
// SQL only when it is exactly {_id: <string or ObjectID>}; any other filter, including the
// version guard {_id, version}, scans and decodes the whole collection, so its cost grows with the
// number of documents.
func BenchmarkReplaceOneUpsert(b *testing.B) {
	for _, guard := range []bool{true, false} {
		for _, docs := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("filter=%s/docs=%d", filterName(guard), docs), func(b *testing.B) {
				coll := benchCollection(b, docs)
				versions := make([]int64, docs)
				upsert := options.Replace().SetUpsert(true)
				i := 0
				for b.Loop() {
					u := i % docs
					i++
					id := benchID(u)
					filter := bson.D{{Key: "_id", Value: id}}
					if guard {
						filter = append(filter, bson.E{Key: "version", Value: versions[u]})
					}
					res, err := coll.ReplaceOne(b.Context(), filter, cartAt(id, versions[u]+1), upsert)
					if err != nil {
						b.Fatal(err)
					}
					if res.MatchedCount != 1 {
						b.Fatalf("upsert %d: %+v, want a match", i, res)
					}
					versions[u]++
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "upserts/s")
			})
		}
	}
}

// BenchmarkBulkWriteReplaceOne measures batching while catching up: one BulkWrite of 50
// version-guarded ReplaceOne models per op, over a 50-document collection (a batch of 100 or more
// matching models deadlocks FerretDB; see TestCompatBulkWriteDeadlocksAt100Matches).
func BenchmarkBulkWriteReplaceOne(b *testing.B) {
	const docs = 50
	coll := benchCollection(b, docs)
	versions := make([]int64, docs)
	models := make([]mongo.WriteModel, docs)
	for b.Loop() {
		for u := range docs {
			id := benchID(u)
			models[u] = mongo.NewReplaceOneModel().
				SetFilter(bson.D{{Key: "_id", Value: id}, {Key: "version", Value: versions[u]}}).
				SetReplacement(cartAt(id, versions[u]+1)).
				SetUpsert(true)
		}
		res, err := coll.BulkWrite(b.Context(), models)
		if err != nil {
			b.Fatal(err)
		}
		if res.MatchedCount != docs {
			b.Fatalf("bulk: %+v, want %d matches", res, docs)
		}
		for u := range versions {
			versions[u]++
		}
	}
	b.ReportMetric(float64(b.N*docs)/b.Elapsed().Seconds(), "upserts/s")
}

// BenchmarkFindOneByID measures the query side's lookup of one user's cart by _id (pushed down to
// SQL for string IDs) by collection size.
func BenchmarkFindOneByID(b *testing.B) {
	for _, docs := range []int{1, 1000} {
		b.Run(fmt.Sprintf("docs=%d", docs), func(b *testing.B) {
			coll := benchCollection(b, docs)
			i := 0
			for b.Loop() {
				var got cart
				if err := coll.FindOne(b.Context(), bson.D{{Key: "_id", Value: benchID(i % docs)}}).Decode(&got); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func filterName(guard bool) string {
	if guard {
		return "id+version"
	}
	return "id"
}

func benchID(u int) string { return fmt.Sprintf("user-%04d", u) }

// benchCollection returns a collection on a fresh server holding docs carts at version 0.
func benchCollection(b *testing.B, docs int) *mongo.Collection {
	b.Helper()
	s := StartForTest(b)
	coll := ConnectForTest(b, s).Database("bench").Collection("carts")
	seed := make([]any, docs)
	for u := range seed {
		seed[u] = cartAt(benchID(u), 0)
	}
	if _, err := coll.InsertMany(b.Context(), seed); err != nil {
		b.Fatal(err)
	}
	return coll
}
