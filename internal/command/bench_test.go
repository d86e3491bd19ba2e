package command_test

import (
	"context"
	"fmt"
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
