package e2e_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/auth"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// methodsOf lists the RPC names of a service, unary and streaming, so that
// a table keyed by them can prove it covers every RPC.
func methodsOf(sd grpc.ServiceDesc) []string {
	var names []string
	for _, m := range sd.Methods {
		names = append(names, m.MethodName)
	}
	for _, s := range sd.Streams {
		names = append(names, s.StreamName)
	}
	return names
}

// TestUsersOnlyTouchTheirOwnCart is the object-level half of the trust
// boundary (issue 8): a user's token on another user's cart is
// PERMISSION_DENIED on every RPC of both services and reads or writes
// nothing; an empty user_id is the token's subject; x-principal from a
// user is ignored; a cart:any service acts for a user with both recorded.
func TestUsersOnlyTouchTheirOwnCart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	e := newEnv(t)
	e.show("sku-1", eur(2, 0))
	bobV := e.add("bob", "sku-1", 2, nil)
	e.cartAt("bob", bobV)
	bobHistory := len(e.history("bob"))

	alice := func() context.Context { return e.as("alice") }
	commands := map[string]func(context.Context) error{
		"AddItem": func(c context.Context) error {
			_, err := e.cmd.AddItem(c, &cartv1.AddItemRequest{UserId: "bob", ProductId: "sku-1", Quantity: 1})
			return err
		},
		"RemoveItem": func(c context.Context) error {
			_, err := e.cmd.RemoveItem(c, &cartv1.RemoveItemRequest{UserId: "bob", ProductId: "sku-1"})
			return err
		},
		"ChangeItemQuantity": func(c context.Context) error {
			_, err := e.cmd.ChangeItemQuantity(c, &cartv1.ChangeItemQuantityRequest{UserId: "bob", ProductId: "sku-1", Quantity: 9})
			return err
		},
		"ClearCart": func(c context.Context) error {
			_, err := e.cmd.ClearCart(c, &cartv1.ClearCartRequest{UserId: "bob"})
			return err
		},
		"CheckoutCart": func(c context.Context) error {
			_, err := e.cmd.CheckoutCart(c, &cartv1.CheckoutCartRequest{UserId: "bob"})
			return err
		},
	}
	queries := map[string]func(context.Context) error{
		"GetCart": func(c context.Context) error {
			_, err := e.query.GetCart(c, &cartv1.GetCartRequest{UserId: "bob"})
			return err
		},
		"GetCartHistory": func(c context.Context) error {
			_, err := e.query.GetCartHistory(c, &cartv1.GetCartHistoryRequest{UserId: "bob"})
			return err
		},
		"GetCartAsOf": func(c context.Context) error {
			_, err := e.query.GetCartAsOf(c, &cartv1.GetCartAsOfRequest{UserId: "bob", Point: &cartv1.GetCartAsOfRequest_AsOfVersion{AsOfVersion: 0}})
			return err
		},
	}
	for _, svc := range []struct {
		desc  grpc.ServiceDesc
		calls map[string]func(context.Context) error
	}{{cartv1.CartCommandService_ServiceDesc, commands}, {cartv1.CartQueryService_ServiceDesc, queries}} {
		for _, m := range methodsOf(svc.desc) {
			call, ok := svc.calls[m]
			if !ok {
				t.Errorf("%s/%s has no case: every RPC must be checked", svc.desc.ServiceName, m)
				continue
			}
			if err := call(alice()); status.Code(err) != codes.PermissionDenied {
				t.Errorf("alice on bob's cart: %s/%s = %v; want PERMISSION_DENIED", svc.desc.ServiceName, m, err)
			}
		}
	}
	if h := e.history("bob"); len(h) != bobHistory {
		t.Fatalf("bob's history has %d events after alice's calls, want %d", len(h), bobHistory)
	}
	if c := e.cartAt("bob", bobV); c.GetVersion() != bobV || quantities(c)["sku-1"] != 2 {
		t.Fatalf("bob's cart changed: %v", c)
	}

	t.Run("empty user_id is the token's subject, x-principal ignored", func(t *testing.T) {
		c := metadata.AppendToOutgoingContext(alice(), "x-principal", "mallory")
		resp, err := e.cmd.AddItem(c, &cartv1.AddItemRequest{ProductId: "sku-1", Quantity: 1})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.query.GetCart(alice(), &cartv1.GetCartRequest{MinVersion: proto.Int64(resp.GetVersion())})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetCart().GetUserId() != "alice" || quantities(got.GetCart())["sku-1"] != 1 {
			t.Fatalf("alice's cart = %v", got.GetCart())
		}
		h := e.history("alice")
		if len(h) != 1 || h[0].GetPrincipal() != "alice" || h[0].GetOnBehalfOf() != "" {
			t.Fatalf("alice's history = %v; want one event by principal alice (x-principal ignored)", h)
		}
	})

	t.Run("cart:any acts for a user, both recorded", func(t *testing.T) {
		svc := e.as("orders-svc", auth.ScopeAny)
		if _, err := e.cmd.AddItem(svc, &cartv1.AddItemRequest{UserId: "carol", ProductId: "sku-1", Quantity: 3}); err != nil {
			t.Fatal(err)
		}
		h := e.history("carol")
		if len(h) != 1 || h[0].GetPrincipal() != "orders-svc" || h[0].GetOnBehalfOf() != "carol" {
			t.Fatalf("carol's history = %v; want principal orders-svc on behalf of carol", h)
		}
		// The service must name the user: its own subject is no cart.
		if _, err := e.cmd.AddItem(svc, &cartv1.AddItemRequest{ProductId: "sku-1", Quantity: 1}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("cart:any without user_id = %v; want INVALID_ARGUMENT", err)
		}
	})
}
