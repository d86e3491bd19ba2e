package grpccatalog

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// MaxProductsPerCall bounds GetPrices requests, as the proto documents: a
// cart has at most cart.MaxLines lines, so more is a client bug.
const MaxProductsPerCall = 100

// Server serves cart.v1.PriceService from any command.Catalog, e.g. a
// catalog file: a price service for the local stack and for tests of the
// client against the real protocol, without a catalog team's service.
type Server struct {
	cartv1.UnimplementedPriceServiceServer
	catalog command.Catalog
}

var _ cartv1.PriceServiceServer = (*Server)(nil)

// NewServer returns a PriceService answering from catalog.
func NewServer(catalog command.Catalog) *Server { return &Server{catalog: catalog} }

// GetPrices implements cartv1.PriceServiceServer.
func (s *Server) GetPrices(ctx context.Context, req *cartv1.GetPricesRequest) (*cartv1.GetPricesResponse, error) {
	ids := req.GetProductIds()
	if len(ids) > MaxProductsPerCall {
		return nil, status.Errorf(codes.InvalidArgument, "product_ids: at most %d per call", MaxProductsPerCall)
	}
	for i, id := range ids {
		if v := cart.ValidateID("product_ids", id); len(v) > 0 {
			return nil, status.Errorf(codes.InvalidArgument, "product_ids[%d]: %s", i, v[0].Description)
		}
	}
	prices, err := s.catalog.Prices(ctx, ids)
	switch {
	case errors.Is(err, cart.ErrUnavailable):
		return nil, status.Error(codes.Unavailable, "the catalog is unavailable; retry later")
	case errors.Is(err, context.DeadlineExceeded):
		return nil, status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return nil, status.Error(codes.Canceled, "canceled")
	case err != nil:
		return nil, status.Error(codes.Internal, "internal error") // the details may be internals
	}
	resp := &cartv1.GetPricesResponse{Prices: make([]*cartv1.ProductPrice, 0, len(prices))}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		p, ok := prices[id]
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		resp.Prices = append(resp.Prices, &cartv1.ProductPrice{
			ProductId: id,
			UnitPrice: &cartv1.Money{CurrencyCode: p.CurrencyCode, Units: p.Units, Nanos: p.Nanos},
		})
	}
	return resp, nil
}
