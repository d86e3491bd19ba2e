package grpccatalog_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/catalog/catalogtest"
	"github.com/acme/cart/internal/catalog/grpccatalog"
	"github.com/acme/cart/internal/command"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// fakePrices is a hand-written PriceService: it answers from a price list
// as the proto documents, and can be told to misbehave.
type fakePrices struct {
	cartv1.UnimplementedPriceServiceServer
	prices map[string]cart.Money

	mu       sync.Mutex
	requests [][]string
	err      error         // answer every call with this status
	delay    time.Duration // answer this late (or when the call is canceled)
	extra    []*cartv1.ProductPrice
}

var _ cartv1.PriceServiceServer = (*fakePrices)(nil)

func (f *fakePrices) GetPrices(ctx context.Context, req *cartv1.GetPricesRequest) (*cartv1.GetPricesResponse, error) {
	f.mu.Lock()
	f.requests = append(f.requests, slices.Clone(req.GetProductIds()))
	err, delay, extra := f.err, f.delay, f.extra
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if err != nil {
		return nil, err
	}
	resp := &cartv1.GetPricesResponse{}
	for _, id := range req.GetProductIds() {
		if p, ok := f.prices[id]; ok {
			resp.Prices = append(resp.Prices, &cartv1.ProductPrice{ProductId: id, UnitPrice: &cartv1.Money{CurrencyCode: p.CurrencyCode, Units: p.Units, Nanos: p.Nanos}})
		}
	}
	resp.Prices = append(resp.Prices, extra...)
	return resp, nil
}

func (f *fakePrices) set(fn func(f *fakePrices)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// serve runs fake in process and returns a connection to it, and a stop
// function that takes the server down (an outage).
func serve(t *testing.T, fake *fakePrices) (*grpc.ClientConn, func()) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	cartv1.RegisterPriceServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///price-service",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(srv.Stop) }
	t.Cleanup(func() {
		_ = conn.Close()
		stop()
	})
	return conn, stop
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestContract(t *testing.T) {
	t.Parallel()
	catalogtest.Run(t, func(t *testing.T, prices map[string]cart.Money) command.Catalog {
		conn, _ := serve(t, &fakePrices{prices: prices})
		return grpccatalog.New(conn, time.Second)
	})
}

func TestAsksOnceForProductsNamedTwice(t *testing.T) {
	t.Parallel()
	fake := &fakePrices{prices: catalogtest.Prices}
	conn, _ := serve(t, fake)
	c := grpccatalog.New(conn, 0)
	if _, err := c.Prices(ctx(t), []string{"sku-1", "sku-2", "sku-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prices(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !slices.EqualFunc(fake.requests, [][]string{{"sku-1", "sku-2"}}, slices.Equal) {
		t.Fatalf("requests = %v, want one for sku-1 and sku-2 (none for no products)", fake.requests)
	}
}

func TestOutagesAreUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("UNAVAILABLE", func(t *testing.T) {
		t.Parallel()
		fake := &fakePrices{prices: catalogtest.Prices, err: status.Error(codes.Unavailable, "overloaded")}
		conn, _ := serve(t, fake)
		if _, err := grpccatalog.New(conn, time.Second).Prices(ctx(t), []string{"sku-1"}); !errors.Is(err, cart.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("DEADLINE_EXCEEDED from the service", func(t *testing.T) {
		t.Parallel()
		fake := &fakePrices{prices: catalogtest.Prices, err: status.Error(codes.DeadlineExceeded, "its own backend timed out")}
		conn, _ := serve(t, fake)
		if _, err := grpccatalog.New(conn, time.Second).Prices(ctx(t), []string{"sku-1"}); !errors.Is(err, cart.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("slower than the per-call timeout", func(t *testing.T) {
		t.Parallel()
		fake := &fakePrices{prices: catalogtest.Prices, delay: 5 * time.Second}
		conn, _ := serve(t, fake)
		start := time.Now()
		_, err := grpccatalog.New(conn, 50*time.Millisecond).Prices(ctx(t), []string{"sku-1"})
		if !errors.Is(err, cart.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %s; the per-call timeout is 50ms", d)
		}
	})
	t.Run("server down", func(t *testing.T) {
		t.Parallel()
		fake := &fakePrices{prices: catalogtest.Prices}
		conn, stop := serve(t, fake)
		c := grpccatalog.New(conn, 200*time.Millisecond)
		if _, err := c.Prices(ctx(t), []string{"sku-1"}); err != nil {
			t.Fatal(err)
		}
		stop()
		if _, err := c.Prices(ctx(t), []string{"sku-1"}); !errors.Is(err, cart.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
}

func TestCallerCancellationIsNotAnOutage(t *testing.T) {
	t.Parallel()
	fake := &fakePrices{prices: catalogtest.Prices, delay: 5 * time.Second}
	conn, _ := serve(t, fake)
	cctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := grpccatalog.New(conn, 5*time.Second).Prices(cctx, []string{"sku-1"})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, cart.ErrUnavailable) {
		t.Fatalf("err = %v, want the caller's deadline, not ErrUnavailable", err)
	}
}

func TestBadAnswersAreErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		fn   func(f *fakePrices)
	}{
		{"invalid price", func(f *fakePrices) {
			f.extra = []*cartv1.ProductPrice{{ProductId: "sku-9", UnitPrice: &cartv1.Money{CurrencyCode: "ZZZ", Units: 1}}}
		}},
		{"negative price", func(f *fakePrices) {
			f.extra = []*cartv1.ProductPrice{{ProductId: "sku-9", UnitPrice: &cartv1.Money{CurrencyCode: "EUR", Units: -1}}}
		}},
		{"no price", func(f *fakePrices) { f.extra = []*cartv1.ProductPrice{{ProductId: "sku-9"}} }},
		{"not asked for", func(f *fakePrices) {
			f.extra = []*cartv1.ProductPrice{{ProductId: "sku-x", UnitPrice: &cartv1.Money{CurrencyCode: "EUR", Units: 1}}}
		}},
		{"twice", func(f *fakePrices) {
			f.extra = []*cartv1.ProductPrice{{ProductId: "sku-1", UnitPrice: &cartv1.Money{CurrencyCode: "EUR", Units: 1}}}
		}},
		{"internal error", func(f *fakePrices) { f.err = status.Error(codes.Internal, "bug") }},
		{"unimplemented", func(f *fakePrices) { f.err = status.Error(codes.Unimplemented, "old server") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakePrices{prices: catalogtest.Prices}
			fake.set(tt.fn)
			conn, _ := serve(t, fake)
			got, err := grpccatalog.New(conn, time.Second).Prices(ctx(t), []string{"sku-1", "sku-9"})
			if err == nil || errors.Is(err, cart.ErrUnavailable) {
				t.Fatalf("Prices = %v, %v; want an error that is not ErrUnavailable", got, err)
			}
		})
	}
}
