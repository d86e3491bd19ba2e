package querysvc_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/cart"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// BenchmarkReadYourWrites measures, on the stand-in and FerretDB, how long
// after an append GetCart(min_version) answers with the new version: the
// projector's added latency as a client sees it (ryw-ms), and a plain
// GetCart (get-ms). Each op appends to one of 20 carts.
func BenchmarkReadYourWrites(b *testing.B) {
	s := startService(b)
	ctx := b.Context()
	versions := make([]int64, 20)
	for i := range versions {
		versions[i] = -1
	}
	var ryw, get time.Duration
	i := 0
	for b.Loop() {
		u := i % len(versions)
		i++
		user := fmt.Sprintf("user-%d", u)
		meta := cart.Metadata{CommandID: fmt.Sprint(i), CommandType: "Bench", Time: time.Now()}
		v, err := s.es.AppendEvents(ctx, user, versions[u], meta, []cart.Event{cart.ItemAdded{ProductID: "p", Quantity: 1, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 1}}})
		if err != nil {
			b.Fatal(err)
		}
		versions[u] = v
		t0 := time.Now()
		if _, err := s.query.GetCart(ctx, &cartv1.GetCartRequest{UserId: user, MinVersion: proto.Int64(v)}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := s.query.GetCart(ctx, &cartv1.GetCartRequest{UserId: user}); err != nil {
			b.Fatal(err)
		}
		ryw += t1.Sub(t0)
		get += time.Since(t1)
	}
	b.ReportMetric(float64(ryw.Microseconds())/1000/float64(b.N), "ryw-ms")
	b.ReportMetric(float64(get.Microseconds())/1000/float64(b.N), "get-ms")
}
