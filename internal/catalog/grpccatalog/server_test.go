package grpccatalog_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/catalog"
	"github.com/acme/cart/internal/catalog/catalogtest"
	"github.com/acme/cart/internal/catalog/grpccatalog"
	"github.com/acme/cart/internal/command"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// serveCatalog runs grpccatalog.Server on cat in process.
func serveCatalog(t *testing.T, cat command.Catalog) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	cartv1.RegisterPriceServiceServer(srv, grpccatalog.NewServer(cat))
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///price-service",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
	})
	return conn
}

// TestContractThroughServer runs the contract on client and server
// together: a Static catalog served by Server, read by the client.
func TestContractThroughServer(t *testing.T) {
	t.Parallel()
	catalogtest.Run(t, func(t *testing.T, prices map[string]cart.Money) command.Catalog {
		s, err := catalog.NewStatic(prices)
		if err != nil {
			t.Fatal(err)
		}
		return grpccatalog.New(serveCatalog(t, s), time.Second)
	})
}

type downCatalog struct{}

func (downCatalog) Prices(context.Context, []string) (map[string]cart.Money, error) {
	return nil, fmt.Errorf("down: %w", cart.ErrUnavailable)
}

func TestServerErrors(t *testing.T) {
	t.Parallel()
	client := cartv1.NewPriceServiceClient(serveCatalog(t, &catalog.Static{}))
	many := make([]string, grpccatalog.MaxProductsPerCall+1)
	for i := range many {
		many[i] = fmt.Sprint("p", i)
	}
	for _, tt := range []struct {
		name string
		ids  []string
		want codes.Code
	}{
		{"too many", many, codes.InvalidArgument},
		{"bad id", []string{"ok", "not ok"}, codes.InvalidArgument},
		{"empty id", []string{""}, codes.InvalidArgument},
		{"fine", []string{strings.Repeat("x", cart.MaxIDLength)}, codes.OK},
	} {
		_, err := client.GetPrices(ctx(t), &cartv1.GetPricesRequest{ProductIds: tt.ids})
		if status.Code(err) != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	down := grpccatalog.New(serveCatalog(t, downCatalog{}), time.Second)
	if _, err := down.Prices(ctx(t), []string{"sku-1"}); !errors.Is(err, cart.ErrUnavailable) {
		t.Fatalf("an unavailable catalog behind the server = %v, want UNAVAILABLE", err)
	}
}
