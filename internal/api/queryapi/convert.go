package queryapi

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/query"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// entryToProto converts one audit-trail entry; an event this version cannot
// decode is shown verbatim rather than hidden.
func entryToProto(e query.Entry) *cartv1.CartEvent {
	pe := &cartv1.CartEvent{
		Version:       e.Version,
		EventType:     e.Type,
		Time:          timestamppb.New(e.Recorded),
		Principal:     e.Metadata.Principal,
		CommandId:     e.Metadata.CommandID,
		CorrelationId: e.Metadata.CorrelationID,
		CausationId:   e.Metadata.CausationID,
		Reason:        e.Metadata.Reason,
		EventId:       e.EventID,
		OnBehalfOf:    e.Metadata.OnBehalfOf,
	}
	switch ev := e.Event.(type) {
	case cart.ItemAdded:
		pe.Data = &cartv1.CartEvent_ItemAdded{ItemAdded: &cartv1.ItemAdded{ProductId: ev.ProductID, Quantity: int32(ev.Quantity), UnitPrice: rpc.MoneyToProto(ev.UnitPrice)}}
	case cart.ItemRemoved:
		pe.Data = &cartv1.CartEvent_ItemRemoved{ItemRemoved: &cartv1.ItemRemoved{ProductId: ev.ProductID}}
	case cart.ItemQuantityChanged:
		pe.Data = &cartv1.CartEvent_ItemQuantityChanged{ItemQuantityChanged: &cartv1.ItemQuantityChanged{ProductId: ev.ProductID, Quantity: int32(ev.Quantity)}}
	case cart.CartCleared:
		pe.Data = &cartv1.CartEvent_CartCleared{CartCleared: &cartv1.CartCleared{}}
	case cart.CartCheckedOut:
		co := &cartv1.CartCheckedOut{CheckoutId: ev.CheckoutID, Total: rpc.MoneyToProto(ev.Total)}
		for _, it := range ev.Items {
			co.Items = append(co.Items, rpc.ItemToProto(it))
		}
		pe.Data = &cartv1.CartEvent_CartCheckedOut{CartCheckedOut: co}
	case cart.ItemRepriced:
		pe.Data = &cartv1.CartEvent_ItemRepriced{ItemRepriced: &cartv1.ItemRepriced{ProductId: ev.ProductID,
			OldUnitPrice: rpc.MoneyToProto(ev.OldUnitPrice), NewUnitPrice: rpc.MoneyToProto(ev.NewUnitPrice)}}
	default:
		pe.Data = &cartv1.CartEvent_Unknown{Unknown: &cartv1.UnknownEvent{Json: string(e.Data)}}
	}
	return pe
}

// cartViewToProto renders a cart as every query RPC returns it.
func cartViewToProto(v query.CartView) *cartv1.Cart {
	out := &cartv1.Cart{
		UserId:    v.UserID,
		Items:     make([]*cartv1.CartItem, 0, len(v.Lines)),
		Total:     rpc.MoneyToProto(v.Total),
		ItemCount: int32(v.ItemCount),
		Version:   v.Version,
		Stale:     v.Stale,
	}
	for _, l := range v.Lines {
		out.Items = append(out.Items, &cartv1.CartItem{
			ProductId: l.ProductID,
			Quantity:  int32(l.Quantity),
			UnitPrice: rpc.MoneyToProto(l.UnitPrice),
			LineTotal: rpc.MoneyToProto(l.LineTotal),
		})
	}
	if v.Version >= 0 && !v.UpdateTime.IsZero() {
		out.UpdateTime = timestamppb.New(v.UpdateTime)
	}
	return out
}
