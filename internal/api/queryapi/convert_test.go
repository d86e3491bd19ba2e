package queryapi

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/query"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// TestEntryToProtoShowsRepricingAndWhoActedForWhom: the audit trail shows an
// accepted price change as typed data, and a service acting for a user as
// both principal and on_behalf_of.
func TestEntryToProtoShowsRepricingAndWhoActedForWhom(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	e := query.Entry{
		Version: 3, EventID: "id-3", Type: cart.TypeItemRepriced, Recorded: at,
		Metadata: cart.Metadata{CommandID: "c1", Principal: "checkout-svc", OnBehalfOf: "alice"},
		Event: cart.ItemRepriced{ProductID: "sku-1",
			OldUnitPrice: cart.Money{CurrencyCode: "EUR", Units: 9, Nanos: 990_000_000},
			NewUnitPrice: cart.Money{CurrencyCode: "EUR", Units: 10, Nanos: 490_000_000}},
	}
	got := entryToProto(e)
	want := &cartv1.CartEvent{
		Version: 3, EventType: cart.TypeItemRepriced, EventId: "id-3", CommandId: "c1",
		Principal: "checkout-svc", OnBehalfOf: "alice",
		Data: &cartv1.CartEvent_ItemRepriced{ItemRepriced: &cartv1.ItemRepriced{ProductId: "sku-1",
			OldUnitPrice: &cartv1.Money{CurrencyCode: "EUR", Units: 9, Nanos: 990_000_000},
			NewUnitPrice: &cartv1.Money{CurrencyCode: "EUR", Units: 10, Nanos: 490_000_000}}},
	}
	got.Time = nil
	if !proto.Equal(got, want) {
		t.Fatalf("entryToProto = %v\nwant %v", got, want)
	}
}
