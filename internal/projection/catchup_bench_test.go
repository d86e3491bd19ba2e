package projection_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readmodel"
)

// BenchmarkCatchUp measures how fast a fresh projector replays a log into an
// empty read model on FerretDB/SQLite: events/s for a log of 500 events over
// 100 carts (5 each), by batch size. FerretDB's replace scans the whole
// collection, so the figures fall as the read model grows; they say nothing
// about MongoDB.
func BenchmarkCatchUp(b *testing.B) {
	const carts, perCart = 100, 5
	esdb := standin.Start(b)
	es, err := eventstore.Open(context.Background(), esdb.ConnectionString(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { es.Close() })
	for u := range carts {
		evs := make([]cart.Event, perCart)
		for i := range evs {
			evs[i] = cart.ItemAdded{ProductID: fmt.Sprintf("sku-%d", i%4), Quantity: 1, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 3}}
		}
		meta := cart.Metadata{CommandID: fmt.Sprint(u), CommandType: "Bench", Time: time.Now()}
		if _, err := es.AppendEvents(context.Background(), fmt.Sprintf("user-%d", u), -1, meta, evs); err != nil {
			b.Fatal(err)
		}
	}
	head, err := es.HeadPosition(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	fdb := embeddedmongo.StartForTest(b)
	client, err := readmodel.ConnectWith(context.Background(), fdb.URI(), readmodel.FerretDBCompat())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Close(context.Background()) })

	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			for b.Loop() {
				store := client.Store(fdb.NewDatabaseName(b), readmodel.Collections{})
				p, err := projection.New(projection.Config{Source: es, Store: store, BatchSize: batch})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); _ = p.Run(ctx) }()
				target := head
				err = p.WaitUntil(context.Background(), func(pr projection.Progress) bool {
					return pr.CaughtUp && pr.Checkpoint != nil && !pr.Checkpoint.Less(target)
				})
				cancel()
				<-done
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(carts*perCart*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
