package embeddedmongo

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ConnectForTest connects a driver client to s and disconnects it in tb.Cleanup (before s closes,
// when s came from StartForTest in the same test).
func ConnectForTest(tb testing.TB, s *Server) *mongo.Client {
	tb.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(s.URI()))
	if err != nil {
		tb.Fatalf("connect %s: %v", s.URI(), err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Disconnect(ctx); err != nil {
			tb.Errorf("disconnect: %v", err)
		}
	})
	return client
}

func itoa(i int) string { return strconv.Itoa(i) }
