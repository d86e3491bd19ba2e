package command_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
)

// BenchmarkCommandOnLongHistory measures one command on a cart with a long
// history, through the EventStoreDB adapter on the in-memory stand-in, for
// several idempotency window sizes: snapshots keep replay cost flat, but
// each command still reads the snapshot, whose size follows the window.
func BenchmarkCommandOnLongHistory(b *testing.B) {
	for _, history := range []int{0, 1000, 5000} {
		for _, window := range []int{100, 1000} {
			b.Run(fmt.Sprintf("history=%d/window=%d", history, window), func(b *testing.B) {
				store, _ := realStore(b)
				ctx := context.Background()
				user := "bench"
				h := command.NewHandler(store, priced(command.Options{WindowSize: window}))
				// Seed through the handler so that snapshots and the window
				// are what production would have.
				for i := 0; i < history; i++ {
					q := 1 + i%2
					var cmd cart.Command = cart.ChangeItemQuantity{ProductID: "sku", Quantity: q}
					if i == 0 {
						cmd = addItem("sku", 1)
					}
					if _, err := h.Handle(ctx, command.Envelope{UserID: user, CommandID: uuid.NewString()}, cmd); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if _, err := h.Handle(ctx, command.Envelope{UserID: user, CommandID: uuid.NewString()}, addItem(fmt.Sprintf("p%d", i%40), 1)); err != nil {
						if i%40 == 39 {
							continue
						}
						b.Fatal(err)
					}
					if i%40 == 39 {
						if _, err := h.Handle(ctx, command.Envelope{UserID: user, CommandID: uuid.NewString()}, cart.ClearCart{}); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commands/s")
			})
		}
	}
}

// BenchmarkCommandParallel measures commands from parallel callers through
// the EventStoreDB adapter on the in-memory stand-in:
//
//   - fresh: every command on a cart nobody used before (nothing to cache);
//   - known: commands spread over 1,000 carts that the handler has seen;
//   - hot: every caller on one cart, where optimistic concurrency alone makes
//     callers fight and some give up (conflicts/op counts them).
//
// Callers are 8 per core (b.SetParallelism), more than the cores, as a busy
// service would have.
func BenchmarkCommandParallel(b *testing.B) {
	for _, mode := range []string{"fresh", "known", "hot"} {
		b.Run(mode, func(b *testing.B) {
			store, _ := realStore(b)
			ctx := context.Background()
			h := command.NewHandler(store, priced(command.Options{}))
			const known = 1000
			userOf := func(i int64) string {
				switch mode {
				case "fresh":
					return fmt.Sprintf("fresh-%d", i)
				case "known":
					return fmt.Sprintf("known-%d", i%known)
				}
				return "hot"
			}
			if mode == "known" {
				for i := range int64(known) {
					if _, err := h.Handle(ctx, command.Envelope{UserID: userOf(i), CommandID: uuid.NewString()}, cart.ClearCart{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			var n, conflicts atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					user := userOf(i)
					// Lines come and go so that carts stay within their
					// limits however the commands interleave.
					var cmd cart.Command = addItem(fmt.Sprintf("p%d", i%20), 1)
					if (mode == "hot" && i%20 == 0) || (mode == "known" && (i/known)%20 == 19) {
						cmd = cart.ClearCart{}
					}
					_, err := h.Handle(ctx, command.Envelope{UserID: user, CommandID: uuid.NewString()}, cmd)
					switch {
					case errors.Is(err, cart.ErrConcurrencyConflict):
						conflicts.Add(1)
					case err != nil:
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
		})
	}
}
