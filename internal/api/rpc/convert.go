package rpc

import (
	"github.com/acme/cart/internal/cart"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// ItemToProto converts a cart line, with its line total: commands (a
// checkout's lines) and queries (a cart's) show lines the same way.
func ItemToProto(it cart.Item) *cartv1.CartItem {
	return &cartv1.CartItem{
		ProductId: it.ProductID,
		Quantity:  int32(it.Quantity),
		UnitPrice: MoneyToProto(it.UnitPrice),
		LineTotal: MoneyToProto(it.LineTotal()),
	}
}

// MoneyToProto converts an amount; the domain and the API agree on units
// and nanos, so nothing is rounded.
func MoneyToProto(m cart.Money) *cartv1.Money {
	return &cartv1.Money{CurrencyCode: m.CurrencyCode, Units: m.Units, Nanos: m.Nanos}
}
