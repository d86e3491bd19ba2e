package grpcapi

import (
	"log/slog"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/query"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// QueryServer serves cart.v1.CartQueryService on top of query.Service. Each
// RPC lives in its own file (get_cart.go, ...); RPCs not implemented yet
// answer Unimplemented through the embedded type.
type QueryServer struct {
	cartv1.UnimplementedCartQueryServiceServer
	queries *query.Service
	log     *slog.Logger
}

var _ cartv1.CartQueryServiceServer = (*QueryServer)(nil)

// NewQueryServer returns the query API over queries; log receives the
// internal errors that callers only see as a generic message.
func NewQueryServer(queries *query.Service, log *slog.Logger) *QueryServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &QueryServer{queries: queries, log: log}
}

// cartViewToProto renders a cart as every query RPC returns it.
func cartViewToProto(v query.CartView) *cartv1.Cart {
	out := &cartv1.Cart{
		UserId:    v.UserID,
		Items:     make([]*cartv1.CartItem, 0, len(v.Lines)),
		Total:     cartMoneyToProto(v.Total),
		ItemCount: int32(v.ItemCount),
		Version:   v.Version,
		Stale:     v.Stale,
	}
	for _, l := range v.Lines {
		out.Items = append(out.Items, &cartv1.CartItem{
			ProductId: l.ProductID,
			Quantity:  int32(l.Quantity),
			UnitPrice: cartMoneyToProto(l.UnitPrice),
			LineTotal: cartMoneyToProto(l.LineTotal),
		})
	}
	if v.Version >= 0 && !v.UpdateTime.IsZero() {
		out.UpdateTime = timestamppb.New(v.UpdateTime)
	}
	return out
}

func cartMoneyToProto(m cart.Money) *cartv1.Money {
	return &cartv1.Money{CurrencyCode: m.CurrencyCode, Units: m.Units, Nanos: m.Nanos}
}
