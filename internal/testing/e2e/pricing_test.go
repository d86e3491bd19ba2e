package e2e_test

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/cart"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// priceRefusal checks that err is FAILED_PRECONDITION with reason and
// returns its price changes (none for PRODUCT_NOT_FOUND).
func priceRefusal(t *testing.T, err error, reason string) []*cartv1.PriceChange {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition {
		t.Fatalf("got %v; want FAILED_PRECONDITION %s", err, reason)
	}
	var (
		gotReason string
		changes   []*cartv1.PriceChange
	)
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			gotReason = d.GetReason()
		case *cartv1.PriceChanges:
			changes = d.GetChanges()
		}
	}
	if gotReason != reason {
		t.Fatalf("reason %q; want %q (%v)", gotReason, reason, err)
	}
	return changes
}

// TestPricesComeFromTheCatalog is the price half of the trust boundary
// (issue 8), as an app sees it through command-svc: the catalog prices a
// line, a price the app shows is only compared with it, an unknown product
// is refused, and a price that changed before checkout stops the checkout
// until the app accepts it, which the audit trail records.
func TestPricesComeFromTheCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	e := newEnv(t)
	set := func(product string, m *cartv1.Money) {
		t.Helper()
		if err := e.prices.Set(product, cart.Money{CurrencyCode: m.GetCurrencyCode(), Units: m.GetUnits(), Nanos: m.GetNanos()}); err != nil {
			t.Fatal(err)
		}
	}
	set("sku-1", eur(10, 0))
	set("sku-2", eur(4, 500000000))
	dana := e.as("dana")

	// No unit_price: the catalog's.
	v, err := e.cmd.AddItem(dana, &cartv1.AddItemRequest{ProductId: "sku-1", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	c := e.cartAt("dana", v.GetVersion())
	if got := c.GetItems()[0].GetUnitPrice(); !proto.Equal(got, eur(10, 0)) {
		t.Fatalf("sku-1 priced %v; want the catalog's EUR 10", got)
	}

	// The app shows 0.01: refused with the current price, nothing written.
	_, err = e.cmd.AddItem(dana, &cartv1.AddItemRequest{ProductId: "sku-2", Quantity: 1, UnitPrice: eur(0, 10000000)})
	changes := priceRefusal(t, err, "PRICE_CHANGED")
	if len(changes) != 1 || changes[0].GetProductId() != "sku-2" || !proto.Equal(changes[0].GetNewUnitPrice(), eur(4, 500000000)) ||
		!proto.Equal(changes[0].GetOldUnitPrice(), eur(0, 10000000)) {
		t.Fatalf("price changes = %v; want sku-2 from the shown EUR 0.01 to EUR 4.50", changes)
	}
	// The app shows the right price: accepted.
	v, err = e.cmd.AddItem(dana, &cartv1.AddItemRequest{ProductId: "sku-2", Quantity: 1, UnitPrice: eur(4, 500000000)})
	if err != nil {
		t.Fatal(err)
	}
	if c := e.cartAt("dana", v.GetVersion()); quantities(c)["sku-2"] != 1 || !proto.Equal(c.GetItems()[1].GetUnitPrice(), eur(4, 500000000)) {
		t.Fatalf("cart after the accepted price = %v", c)
	}

	// An unknown product.
	_, err = e.cmd.AddItem(dana, &cartv1.AddItemRequest{ProductId: "sku-nope", Quantity: 1})
	priceRefusal(t, err, "PRODUCT_NOT_FOUND")
	if h := e.history("dana"); len(h) != 2 {
		t.Fatalf("history has %d events; want 2 (the refused commands wrote nothing)", len(h))
	}

	// sku-1 costs more now: checkout fails listing the line with both prices.
	set("sku-1", eur(12, 0))
	_, err = e.cmd.CheckoutCart(dana, &cartv1.CheckoutCartRequest{})
	changes = priceRefusal(t, err, "PRICE_CHANGED")
	if len(changes) != 1 || changes[0].GetProductId() != "sku-1" || !proto.Equal(changes[0].GetOldUnitPrice(), eur(10, 0)) ||
		!proto.Equal(changes[0].GetNewUnitPrice(), eur(12, 0)) {
		t.Fatalf("checkout's price changes = %v; want sku-1 from EUR 10 to EUR 12", changes)
	}
	if h := e.history("dana"); len(h) != 2 {
		t.Fatalf("a refused checkout wrote: %d events", len(h))
	}

	// The app accepts: repriced, then checked out at the new total.
	out, err := e.cmd.CheckoutCart(dana, &cartv1.CheckoutCartRequest{AcceptPriceChanges: true})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(out.GetTotal(), eur(28, 500000000)) {
		t.Fatalf("checkout total %v; want EUR 28.50 (2 × 12 + 4.50)", out.GetTotal())
	}
	h := e.history("dana")
	if len(h) != 4 {
		t.Fatalf("history = %v; want AddItem ×2, ItemRepriced, CartCheckedOut", h)
	}
	rp := h[2].GetItemRepriced()
	if rp == nil || rp.GetProductId() != "sku-1" || !proto.Equal(rp.GetOldUnitPrice(), eur(10, 0)) || !proto.Equal(rp.GetNewUnitPrice(), eur(12, 0)) {
		t.Fatalf("event 3 = %v; want ItemRepriced sku-1 EUR 10 → 12", h[2])
	}
	if h[3].GetCartCheckedOut() == nil {
		t.Fatalf("event 4 = %v; want CartCheckedOut", h[3])
	}
}
