package queryapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/cart/internal/api/queryapi"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/query"
	"github.com/acme/cart/internal/testing/grpctest"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// fakeCarts is the read model in memory.
type fakeCarts struct {
	mu   sync.Mutex
	docs map[string]projection.CartDoc
	err  error
	// reads, if set, receives a value after every read.
	reads chan struct{}
}

func (f *fakeCarts) GetCart(_ context.Context, userID string) (projection.CartDoc, bool, error) {
	f.mu.Lock()
	d, ok := f.docs[userID]
	err, reads := f.err, f.reads
	f.mu.Unlock()
	if reads != nil {
		reads <- struct{}{}
	}
	return d, ok, err
}

func (f *fakeCarts) set(d projection.CartDoc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.docs[d.UserID] = d
}

// startQueryServer serves the query API over fakes on a loopback port and
// returns a client for it.
func startQueryServer(t *testing.T, svc *query.Service) cartv1.CartQueryServiceClient {
	t.Helper()
	srv, _ := rpc.NewServer(slog.New(slog.DiscardHandler), rpc.Security{Auth: auth.NewInsecure(slog.New(slog.DiscardHandler)), Reflection: true})
	cartv1.RegisterCartQueryServiceServer(srv, queryapi.New(svc, nil))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cartv1.NewCartQueryServiceClient(conn)
}

func eur(units int64, nanos int32) cart.Money {
	return cart.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
}

func TestGetCart(t *testing.T) {
	t.Parallel()
	updated := time.Date(2025, 6, 1, 12, 0, 0, 250_000_000, time.UTC)
	carts := &fakeCarts{docs: map[string]projection.CartDoc{
		"u1": {UserID: "u1", Version: 3, UpdatedAt: updated, Cart: cart.Cart{Items: []cart.Item{
			{ProductID: "sku-1", Quantity: 2, UnitPrice: eur(1, 250_000_000)},
			{ProductID: "sku-2", Quantity: 1, UnitPrice: eur(0, 990_000_000)},
		}}},
		"u2": {UserID: "u2", Version: 1, Stale: true, UpdatedAt: updated},
	}}
	client := startQueryServer(t, &query.Service{Carts: carts, Waiter: projection.NewNotifier(), MaxWait: time.Millisecond})
	tests := []struct {
		name string
		req  *cartv1.GetCartRequest
		want *cartv1.Cart
	}{
		{
			name: "cart with lines",
			req:  &cartv1.GetCartRequest{UserId: "u1"},
			want: &cartv1.Cart{
				UserId: "u1",
				Items: []*cartv1.CartItem{
					{ProductId: "sku-1", Quantity: 2,
						UnitPrice: &cartv1.Money{CurrencyCode: "EUR", Units: 1, Nanos: 250_000_000},
						LineTotal: &cartv1.Money{CurrencyCode: "EUR", Units: 2, Nanos: 500_000_000}},
					{ProductId: "sku-2", Quantity: 1,
						UnitPrice: &cartv1.Money{CurrencyCode: "EUR", Nanos: 990_000_000},
						LineTotal: &cartv1.Money{CurrencyCode: "EUR", Nanos: 990_000_000}},
				},
				Total:      &cartv1.Money{CurrencyCode: "EUR", Units: 3, Nanos: 490_000_000},
				ItemCount:  3,
				Version:    3,
				UpdateTime: timestamppb.New(updated),
			},
		},
		{
			name: "unknown user: empty cart at version -1",
			req:  &cartv1.GetCartRequest{UserId: "nobody", MinVersion: proto.Int64(-1)},
			want: &cartv1.Cart{UserId: "nobody", Total: &cartv1.Money{}, Version: -1},
		},
		{
			name: "stale cart at min_version",
			req:  &cartv1.GetCartRequest{UserId: "u2", MinVersion: proto.Int64(1)},
			want: &cartv1.Cart{UserId: "u2", Total: &cartv1.Money{}, Version: 1, Stale: true, UpdateTime: timestamppb.New(updated)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := client.GetCart(grpctest.Context(t), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(resp.GetCart(), tt.want) {
				t.Errorf("GetCart = %v\nwant %v", resp.GetCart(), tt.want)
			}
		})
	}
}

func TestGetCartErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		req       *cartv1.GetCartRequest
		storeErr  error
		wantCode  codes.Code
		wantField []string // BadRequest field violations, in order
		wantRetry bool
	}{
		{
			name:      "bad user_id and min_version",
			req:       &cartv1.GetCartRequest{UserId: "", MinVersion: proto.Int64(-2)},
			wantCode:  codes.InvalidArgument,
			wantField: []string{"user_id", "min_version"},
		},
		{
			name:      "user_id too long",
			req:       &cartv1.GetCartRequest{UserId: fmt.Sprintf("%0200d", 1)},
			wantCode:  codes.InvalidArgument,
			wantField: []string{"user_id"},
		},
		{
			name:      "version not reached",
			req:       &cartv1.GetCartRequest{UserId: "u1", MinVersion: proto.Int64(9)},
			wantCode:  codes.Unavailable,
			wantRetry: true,
		},
		{
			name:     "read model unavailable",
			req:      &cartv1.GetCartRequest{UserId: "u1"},
			storeErr: fmt.Errorf("dial: %w", cart.ErrUnavailable),
			wantCode: codes.Unavailable,
		},
		{
			name:     "unexpected store failure is internal",
			req:      &cartv1.GetCartRequest{UserId: "u1"},
			storeErr: fmt.Errorf("decode: bad bson"),
			wantCode: codes.Internal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			carts := &fakeCarts{docs: map[string]projection.CartDoc{"u1": {UserID: "u1", Version: 2}}, err: tt.storeErr}
			client := startQueryServer(t, &query.Service{Carts: carts, Waiter: projection.NewNotifier(), MaxWait: time.Millisecond})
			_, err := client.GetCart(grpctest.Context(t), tt.req)
			st := status.Convert(err)
			if st.Code() != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tt.wantCode)
			}
			var fields []string
			retry := false
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.BadRequest:
					for _, v := range d.GetFieldViolations() {
						fields = append(fields, v.GetField())
					}
				case *errdetails.RetryInfo:
					retry = true
				}
			}
			if fmt.Sprint(fields) != fmt.Sprint(tt.wantField) && (len(fields) > 0 || len(tt.wantField) > 0) {
				t.Errorf("field violations = %v, want %v", fields, tt.wantField)
			}
			if retry != tt.wantRetry {
				t.Errorf("RetryInfo present = %v, want %v", retry, tt.wantRetry)
			}
			if tt.wantCode == codes.Internal && st.Message() != "internal error" {
				t.Errorf("internal error leaks %q", st.Message())
			}
		})
	}
}

// getCartResult is the outcome of a GetCart run in the background.
type getCartResult struct {
	resp *cartv1.GetCartResponse
	err  error
}

// getCartAsync calls GetCart with minVersion in the background, for tests
// that act while it waits.
func getCartAsync(t *testing.T, client cartv1.CartQueryServiceClient, user string, minVersion int64) <-chan getCartResult {
	done := make(chan getCartResult, 1)
	go func() {
		resp, err := client.GetCart(grpctest.Context(t), &cartv1.GetCartRequest{UserId: user, MinVersion: proto.Int64(minVersion)})
		done <- getCartResult{resp, err}
	}()
	return done
}

func TestGetCartWaitsForMinVersion(t *testing.T) {
	t.Parallel()
	carts := &fakeCarts{docs: map[string]projection.CartDoc{"u1": {UserID: "u1", Version: 0}}, reads: make(chan struct{})}
	n := projection.NewNotifier()
	client := startQueryServer(t, &query.Service{Carts: carts, Waiter: n, MaxWait: time.Minute})

	done := getCartAsync(t, client, "u1", 2)
	read := func(what string) {
		t.Helper()
		select {
		case <-carts.reads:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s", what)
		}
	}
	// The call registers its wait and reads: after that read it is
	// waiting for the notification.
	read("first read")
	carts.set(projection.CartDoc{UserID: "u1", Version: 2, Cart: cart.Cart{Items: []cart.Item{{ProductID: "p", Quantity: 1, UnitPrice: eur(1, 0)}}}})
	n.WakeAll()
	read("read after waking") // a wake-up without a document (a switch of collections)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if c := r.resp.GetCart(); c.GetVersion() != 2 || c.GetItemCount() != 1 {
		t.Errorf("GetCart = %v, want version 2 with one item", c)
	}
}

// Given a GetCart waiting for min_version, when the projector announces
// the document it stored, then the call answers with that document and
// reads the read model no more.
func TestGetCartAnswersFromTheAnnouncedDocument(t *testing.T) {
	t.Parallel()
	carts := &fakeCarts{docs: map[string]projection.CartDoc{"u1": {UserID: "u1", Version: 0}}, reads: make(chan struct{}, 10)}
	n := projection.NewNotifier()
	client := startQueryServer(t, &query.Service{Carts: carts, Waiter: n, MaxWait: time.Minute})
	done := getCartAsync(t, client, "u1", 2)
	select {
	case <-carts.reads:
	case <-time.After(10 * time.Second):
		t.Fatal("GetCart never read the read model")
	}
	stored := projection.CartDoc{UserID: "u1", Version: 2, Cart: cart.Cart{Items: []cart.Item{{ProductID: "p", Quantity: 3, UnitPrice: eur(1, 0)}}}}
	n.NotifyDoc(stored) // the read model itself is left behind on purpose
	var r getCartResult
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("GetCart did not answer after the announcement")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if c := r.resp.GetCart(); c.GetVersion() != 2 || c.GetItemCount() != 3 {
		t.Errorf("GetCart = %v, want the announced version 2 with 3 items", c)
	}
	if extra := len(carts.reads); extra != 0 {
		t.Errorf("%d reads after the announcement, want none", extra)
	}
}
