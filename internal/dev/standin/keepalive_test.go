package standin

import (
	"context"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// TestIdleClientSurvivesKeepalivePings keeps a real client idle, with a
// live subscription, for longer than a default grpc-go server tolerates
// its 10 s pings (it answers too_many_pings after about 30 s and the
// subscription drops), then checks that both still work.
func TestIdleClientSurvivesKeepalivePings(t *testing.T) {
	if testing.Short() {
		t.Skip("idles for 35 s to let the client ping several times")
	}
	t.Parallel()
	srv := Start(t)
	cfg, err := esdb.ParseConnectionString(srv.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	client, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := client.SubscribeToStream(ctx, "idle", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	time.Sleep(35 * time.Second) // the client pings at 10, 20 and 30 s

	if _, err := client.AppendToStream(ctx, "idle", esdb.AppendToStreamOptions{}, esdb.EventData{
		EventID: uuid.New(), EventType: "Woke", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`),
	}); err != nil {
		t.Fatalf("append after idling: %v", err)
	}
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			t.Fatalf("subscription dropped while idle: %v", ev.SubscriptionDropped.Error)
		case ev.EventAppeared != nil:
			if got := ev.EventAppeared.Event.EventType; got != "Woke" {
				t.Fatalf("event %q, want Woke", got)
			}
			return
		}
	}
}
