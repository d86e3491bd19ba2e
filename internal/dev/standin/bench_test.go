package standin

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
)

// A cart event of a realistic size (~200 bytes of JSON).
var benchPayload = []byte(`{"cartId":"` + uuid.NewString() + `","sku":"SKU-000123","quantity":2,"unitPrice":{"amount":"19.99","currency":"EUR"},"metadata":{"commandId":"` +
	uuid.NewString() + `","actor":"user-42"}}`)

func benchEvents(n int) []esdb.EventData {
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = esdb.EventData{EventID: uuid.New(), EventType: "ItemAdded", ContentType: esdb.ContentTypeJson, Data: benchPayload}
	}
	return out
}

func perSecond(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkUnaryNoop is the floor: one gRPC round trip to the same server
// doing nothing (GetSupportedMethods), so the stand-in's own cost in the
// other benchmarks is visible.
func BenchmarkUnaryNoop(b *testing.B) {
	s := Start(b)
	client := serverfeatures.NewServerFeaturesClient(rawConn(b, s))
	ctx := testCtx(b)
	for b.Loop() {
		if _, err := client.GetSupportedMethods(ctx, &shared.Empty{}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchServers(b *testing.B) map[string]func(*testing.B) *Server {
	return map[string]func(*testing.B) *Server{
		"memory":   func(b *testing.B) *Server { return Start(b) },
		"data-dir": func(b *testing.B) *Server { return Start(b, WithDataDir(b.TempDir())) },
	}
}

// BenchmarkAppend measures appends through the v4 client: one event per
// append, batches of 100, and single-event appends from many goroutines. With
// a data directory every append waits for the fsync covering it (concurrent
// ones share one: group commit).
func BenchmarkAppend(b *testing.B) {
	for _, storage := range []string{"memory", "data-dir"} {
		newServer := benchServers(b)[storage]
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", storage, batch), func(b *testing.B) {
				s := newServer(b)
				c := newClient(b, s)
				ctx := testCtx(b)
				evs := benchEvents(batch)
				n := 0
				for b.Loop() {
					for i := range evs {
						evs[i].EventID = uuid.New()
					}
					if _, err := c.AppendToStream(ctx, fmt.Sprintf("cart-bench-%d", n%1000), esdb.AppendToStreamOptions{}, evs...); err != nil {
						b.Fatal(err)
					}
					n++
				}
				perSecond(b, n*batch)
			})
		}
		b.Run(storage+"/parallel", func(b *testing.B) {
			s := newServer(b)
			c := newClient(b, s)
			ctx := testCtx(b)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				stream := "cart-bench-" + uuid.NewString()
				for pb.Next() {
					if _, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, benchEvents(1)...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			perSecond(b, b.N)
		})
	}
}

// BenchmarkSubscriptionDelivery measures events delivered to a filtered
// $all subscription through the v4 client: catching up on events already
// written, and live while a writer appends batches of 100.
func BenchmarkSubscriptionDelivery(b *testing.B) {
	filter := &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"cart-"}}

	b.Run("catch-up", func(b *testing.B) {
		s := Start(b)
		c := newClient(b, s)
		ctx := testCtx(b)
		for written := 0; written < b.N; written += 500 {
			if _, err := c.AppendToStream(ctx, fmt.Sprintf("cart-sub-%d", written%97), esdb.AppendToStreamOptions{}, benchEvents(min(500, b.N-written))...); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: filter})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		receive(b, sub, b.N)
		perSecond(b, b.N)
	})

	b.Run("live", func(b *testing.B) {
		s := Start(b)
		c := newClient(b, s)
		ctx := testCtx(b)
		sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.End{}, Filter: filter})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		b.ResetTimer()
		writeErr := make(chan error, 1)
		go func() {
			for written := 0; written < b.N; written += 100 {
				if _, err := c.AppendToStream(ctx, fmt.Sprintf("cart-live-%d", written%97), esdb.AppendToStreamOptions{}, benchEvents(min(100, b.N-written))...); err != nil {
					writeErr <- err
					return
				}
			}
			writeErr <- nil
		}()
		receive(b, sub, b.N)
		if err := <-writeErr; err != nil {
			b.Fatal(err)
		}
		perSecond(b, b.N)
	})
}

func receive(b *testing.B, sub *esdb.Subscription, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for got := 0; got < n; {
		m := sub.Recv()
		switch {
		case m.SubscriptionDropped != nil:
			b.Fatalf("dropped after %d events: %v", got, m.SubscriptionDropped.Error)
		case m.EventAppeared != nil:
			if !strings.HasPrefix(m.EventAppeared.OriginalEvent().StreamID, "cart-") {
				b.Fatalf("unfiltered event %s", m.EventAppeared.OriginalEvent().StreamID)
			}
			got++
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d events delivered", got, n)
		}
	}
}

// BenchmarkDurableConcurrentAppend measures what group commit is for: 16
// goroutines appending one event each through the v4 client to a server with
// a data directory, so every acknowledgement waits for an fsync. "distinct"
// gives each goroutine its own stream (carts), "shared" sends them all to one
// stream with expected revision any (the worst case for the per-stream
// checks). The goroutine count is fixed rather than scaled with GOMAXPROCS so
// that figures from different machines describe the same load.
func BenchmarkDurableConcurrentAppend(b *testing.B) {
	const writers = 16
	for _, streams := range []string{"distinct", "shared"} {
		b.Run(streams, func(b *testing.B) {
			s := Start(b, WithDataDir(b.TempDir()))
			c := newClient(b, s)
			ctx := testCtx(b)
			shared := "cart-bench-shared-" + uuid.NewString()
			syncsBefore := s.store.wal.syncs.Load()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range writers {
				stream := shared
				if streams == "distinct" {
					stream = fmt.Sprintf("cart-bench-%d-%s", w, uuid.NewString())
				}
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, benchEvents(1)...); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			// How many appends one fsync covered on average: the group
			// size, less noisy than the rate on a busy machine.
			b.ReportMetric(float64(b.N)/float64(s.store.wal.syncs.Load()-syncsBefore), "appends/fsync")
		})
	}
}
