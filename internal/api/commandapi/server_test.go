package commandapi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/api/commandapi"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/catalog"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/testing/commandtest"
	"github.com/acme/cart/internal/testing/grpctest"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// startCommandServer serves the command API over h on a real listener and
// returns a generated client connected to it.
func startCommandServer(t *testing.T, h commandapi.Handler) cartv1.CartCommandServiceClient {
	t.Helper()
	srv, _ := rpc.NewServer(slog.New(slog.DiscardHandler), rpc.Security{Auth: auth.NewInsecure(slog.New(slog.DiscardHandler)), Reflection: true})
	cartv1.RegisterCartCommandServiceServer(srv, commandapi.New(h, nil))
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
	t.Cleanup(func() { _ = conn.Close() })
	return cartv1.NewCartCommandServiceClient(conn)
}

func price(units int64) *cartv1.Money { return &cartv1.Money{CurrencyCode: "EUR", Units: units} }

func version(v int64) *int64 { return &v }

func eur(units int64) cart.Money { return cart.Money{CurrencyCode: "EUR", Units: units} }

// prices is the server's catalog in a test: the prices the test's requests
// show, so that they pass the price check.
func prices(t *testing.T, p map[string]cart.Money) command.Catalog {
	t.Helper()
	c, err := catalog.NewStatic(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCommandServerHappyPath(t *testing.T) {
	t.Parallel()
	mem := commandtest.NewMemoryStore()
	c := startCommandServer(t, command.NewHandler(mem, command.Options{Catalog: prices(t, map[string]cart.Money{
		"a": {CurrencyCode: "EUR", Units: 1, Nanos: 250_000_000}, "b": eur(3), "c": eur(1),
	})}))
	ctx := metadata.AppendToOutgoingContext(grpctest.Context(t),
		auth.InsecurePrincipalHeader, "alice", rpc.HeaderCorrelationID, "corr-1", rpc.HeaderCausationID, "cause-1")

	add, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "u", ProductId: "a", Quantity: 2,
		UnitPrice: &cartv1.Money{CurrencyCode: "EUR", Units: 1, Nanos: 250_000_000}, ExpectedVersion: version(-1), Reason: "first"})
	if err != nil || add.GetVersion() != 0 {
		t.Fatalf("AddItem = %v, %v; want version 0", add, err)
	}
	m := mem.Metadata("u", 0)
	if m.Principal != "alice" || m.CorrelationID != "corr-1" || m.CausationID != "cause-1" || m.Reason != "first" || m.CommandType != "AddItem" {
		t.Errorf("recorded metadata %+v; want the headers and reason", m)
	}
	if _, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "u", ProductId: "b", Quantity: 1, UnitPrice: price(3)}); err != nil {
		t.Fatal(err)
	}
	chg, err := c.ChangeItemQuantity(ctx, &cartv1.ChangeItemQuantityRequest{UserId: "u", ProductId: "b", Quantity: 4, ExpectedVersion: version(1)})
	if err != nil || chg.GetVersion() != 2 {
		t.Fatalf("ChangeItemQuantity = %v, %v; want version 2", chg, err)
	}
	if _, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "u", ProductId: "c", Quantity: 1, UnitPrice: price(1)}); err != nil {
		t.Fatal(err)
	}
	rm, err := c.RemoveItem(ctx, &cartv1.RemoveItemRequest{UserId: "u", ProductId: "c"})
	if err != nil || rm.GetVersion() != 4 {
		t.Fatalf("RemoveItem = %v, %v; want version 4", rm, err)
	}

	id := uuid.NewString()
	co, err := c.CheckoutCart(ctx, &cartv1.CheckoutCartRequest{UserId: "u", CommandId: id})
	if err != nil {
		t.Fatalf("CheckoutCart: %v", err)
	}
	want := &cartv1.CheckoutCartResponse{
		Version:    5,
		CheckoutId: command.CheckoutID(id),
		Items: []*cartv1.CartItem{
			{ProductId: "a", Quantity: 2, UnitPrice: &cartv1.Money{CurrencyCode: "EUR", Units: 1, Nanos: 250_000_000}, LineTotal: &cartv1.Money{CurrencyCode: "EUR", Units: 2, Nanos: 500_000_000}},
			{ProductId: "b", Quantity: 4, UnitPrice: price(3), LineTotal: price(12)},
		},
		Total: &cartv1.Money{CurrencyCode: "EUR", Units: 14, Nanos: 500_000_000},
	}
	if !proto.Equal(co, want) {
		t.Fatalf("CheckoutCart = %v\nwant %v", co, want)
	}
	again, err := c.CheckoutCart(ctx, &cartv1.CheckoutCartRequest{UserId: "u", CommandId: id})
	if err != nil || !proto.Equal(again, want) {
		t.Fatalf("resent CheckoutCart = %v, %v; want the first response", again, err)
	}

	clr, err := c.ClearCart(ctx, &cartv1.ClearCartRequest{UserId: "u"})
	if err != nil || clr.GetVersion() != 5 {
		t.Fatalf("ClearCart of the empty cart = %v, %v; want the unchanged version 5", clr, err)
	}
	if anon := func() cart.Metadata {
		if _, err := c.AddItem(grpctest.Context(t), &cartv1.AddItemRequest{UserId: "v", ProductId: "c", Quantity: 1, UnitPrice: price(1)}); err != nil {
			t.Fatal(err)
		}
		return mem.Metadata("v", 0)
	}(); anon.Principal != command.DefaultPrincipal {
		t.Errorf("principal without header %q, want %q", anon.Principal, command.DefaultPrincipal)
	}
}

func TestCommandServerErrors(t *testing.T) {
	t.Parallel()
	mem := commandtest.NewMemoryStore()
	catalogPrices := map[string]cart.Money{"a": eur(1), "b": {CurrencyCode: "USD", Units: 1}, "one-more": eur(1)}
	for i := range cart.MaxLines {
		catalogPrices[fmt.Sprint("p", i)] = eur(1)
	}
	c := startCommandServer(t, command.NewHandler(mem, command.Options{Catalog: prices(t, catalogPrices)}))
	ctx := grpctest.Context(t)
	usedID := uuid.NewString()
	if _, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "u", ProductId: "a", Quantity: 98, UnitPrice: price(1), CommandId: usedID}); err != nil {
		t.Fatal(err)
	}
	for i := range cart.MaxLines {
		if _, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "full", ProductId: fmt.Sprint("p", i), Quantity: 1, UnitPrice: price(1)}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
		fields []string
	}{
		{"every invalid field at once", func() error {
			_, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "", ProductId: "", Quantity: 0, CommandId: "42"})
			return err
		}, codes.InvalidArgument, "", []string{"user_id", "command_id", "product_id", "quantity"}}, // unit_price is optional: the catalog prices the line
		{"bad user id", func() error {
			_, err := c.ClearCart(ctx, &cartv1.ClearCartRequest{UserId: "a b"})
			return err
		}, codes.InvalidArgument, "", []string{"user_id"}},
		{"command id not a UUID", func() error {
			_, err := c.CheckoutCart(ctx, &cartv1.CheckoutCartRequest{UserId: "u", CommandId: "retry-1"})
			return err
		}, codes.InvalidArgument, "", []string{"command_id"}},
		{"bad price", func() error {
			_, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "u", ProductId: "a", Quantity: 1, UnitPrice: &cartv1.Money{CurrencyCode: "EUR", Nanos: 1_000_000_000}})
			return err
		}, codes.InvalidArgument, "", []string{"unit_price.nanos"}},
		{"expected version below -1", func() error {
			_, err := c.RemoveItem(ctx, &cartv1.RemoveItemRequest{UserId: "u", ProductId: "a", ExpectedVersion: version(-5)})
			return err
		}, codes.InvalidArgument, "", []string{"expected_version"}},
		{"item not in cart", func() error {
			_, err := c.RemoveItem(ctx, &cartv1.RemoveItemRequest{UserId: "u", ProductId: "zz"})
			return err
		}, codes.FailedPrecondition, "CART_ITEM_NOT_FOUND", nil},
		{"quantity limit", func() error {
			_, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "u", ProductId: "a", Quantity: 2, UnitPrice: price(1)})
			return err
		}, codes.FailedPrecondition, "CART_QUANTITY_LIMIT", nil},
		{"currency mismatch", func() error {
			_, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "u", ProductId: "b", Quantity: 1, UnitPrice: &cartv1.Money{CurrencyCode: "USD", Units: 1}})
			return err
		}, codes.FailedPrecondition, "CART_CURRENCY_MISMATCH", nil},
		{"line limit", func() error {
			_, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "full", ProductId: "one-more", Quantity: 1, UnitPrice: price(1)})
			return err
		}, codes.FailedPrecondition, "CART_LINE_LIMIT", nil},
		{"checkout of an empty cart", func() error {
			_, err := c.CheckoutCart(ctx, &cartv1.CheckoutCartRequest{UserId: "nobody"})
			return err
		}, codes.FailedPrecondition, "CART_EMPTY", nil},
		{"expected version mismatch", func() error {
			_, err := c.ClearCart(ctx, &cartv1.ClearCartRequest{UserId: "u", ExpectedVersion: version(7)})
			return err
		}, codes.Aborted, "CART_VERSION_MISMATCH", nil},
		{"command id reused for another command", func() error {
			_, err := c.RemoveItem(ctx, &cartv1.RemoveItemRequest{UserId: "u", ProductId: "a", CommandId: usedID})
			return err
		}, codes.AlreadyExists, "COMMAND_ID_REUSED", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			grpctest.WantStatus(t, tt.call(), tt.code, tt.reason, tt.fields...)
		})
	}
	if n := mem.Len("u"); n != 1 {
		t.Fatalf("failed commands wrote: %d events, want 1", n)
	}
}

// stubHandler fails every command with err, for the failures a real store
// does not produce on demand.
type stubHandler struct{ err error }

func (s stubHandler) Handle(context.Context, command.Envelope, cart.Command) (command.Result, error) {
	return command.Result{}, s.err
}

func TestCommandServerInfrastructureErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"conflicts exhausted", fmt.Errorf("AddItem: after 5 attempts: %w", cart.ErrConcurrencyConflict), codes.Aborted},
		{"store unavailable", fmt.Errorf("load: %w", cart.ErrUnavailable), codes.Unavailable},
		{"unexpected", errors.New("decode ItemAdded event: secret internals"), codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := startCommandServer(t, stubHandler{tt.err})
			_, err := c.AddItem(grpctest.Context(t), &cartv1.AddItemRequest{UserId: "u", ProductId: "a", Quantity: 1, UnitPrice: price(1)})
			grpctest.WantStatus(t, err, tt.code, "")
			if strings.Contains(status.Convert(err).Message(), "secret") {
				t.Errorf("message leaks internals: %q", status.Convert(err).Message())
			}
		})
	}
}

// End to end through the EventStoreDB adapter: commands land in the stream,
// and a store outage is UNAVAILABLE.
func TestCommandServerOnTheStandin(t *testing.T) {
	t.Parallel()
	srv := standin.Start(t)
	store, err := eventstore.Open(grpctest.Context(t), srv.ConnectionString(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	c := startCommandServer(t, command.NewHandler(store, command.Options{Catalog: prices(t, map[string]cart.Money{"a": eur(2)})}))
	ctx := grpctest.Context(t)

	id := uuid.NewString()
	for range 2 { // the resend answers the same and writes nothing
		res, err := c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "u", ProductId: "a", Quantity: 3, UnitPrice: price(2), CommandId: id})
		if err != nil || res.GetVersion() != 0 {
			t.Fatalf("AddItem = %v, %v; want version 0", res, err)
		}
	}
	evs, err := store.ReadStream(ctx, "u", 0, 0)
	if err != nil || len(evs) != 1 || evs[0].Type != cart.TypeItemAdded || evs[0].EventID != eventstore.EventID(id, command.Fingerprint("u", cart.AddItem{ProductID: "a", Quantity: 3, ShownPrice: &cart.Money{CurrencyCode: "EUR", Units: 2}}), 0, evs[0].Data).String() {
		t.Fatalf("stream = %+v, %v; want one ItemAdded with the derived event ID", evs, err)
	}

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = c.AddItem(ctx, &cartv1.AddItemRequest{UserId: "u", ProductId: "a", Quantity: 1, UnitPrice: price(2)})
	grpctest.WantStatus(t, err, codes.Unavailable, "")
}
