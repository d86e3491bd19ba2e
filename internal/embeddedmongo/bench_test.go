package embeddedmongo

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// BenchmarkStart measures how long a test pays for its own server (Start + Close).
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

// BenchmarkReplaceOneUpsert measures the read model's hot path: one version-guarded upsert of a
// single document per call, over a small set of users (ns/op is the cost of one upsert).
func BenchmarkReplaceOneUpsert(b *testing.B) {
	for _, users := range []int{1, 100} {
		b.Run(benchName("users", users), func(b *testing.B) {
			coll := benchCollection(b)
			versions := make([]int64, users)
			i := 0
			for b.Loop() {
				u := i % users
				i++
				filter := bson.D{{Key: "_id", Value: u}, {Key: "version", Value: versions[u]}}
				doc := bson.D{{Key: "_id", Value: u}, {Key: "version", Value: versions[u] + 1}, {Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: "A"}, {Key: "qty", Value: int64(i)}}}}}
				res, err := coll.ReplaceOne(b.Context(), filter, doc, options.Replace().SetUpsert(true))
				if err != nil {
					b.Fatal(err)
				}
				if res.MatchedCount+res.UpsertedCount != 1 {
					b.Fatalf("upsert %d: %+v", i, res)
				}
				versions[u]++
			}
		})
	}
}

func benchCollection(b *testing.B) *mongo.Collection {
	b.Helper()
	s := StartForTest(b)
	client := ConnectForTest(b, s)
	return client.Database("bench").Collection("carts")
}

func benchName(k string, v int) string { return k + "=" + itoa(v) }
