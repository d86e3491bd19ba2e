package queryapi

import (
	"context"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cart"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// GetCart implements cartv1.CartQueryServiceServer: the current cart from
// the read model, waiting for min_version when the caller sets it.
func (s *Server) GetCart(ctx context.Context, req *cartv1.GetCartRequest) (*cartv1.GetCartResponse, error) {
	user, err := s.user(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	v := cart.ValidateID("user_id", user)
	minVersion := int64(-1)
	if req.MinVersion != nil {
		minVersion = req.GetMinVersion()
		if minVersion < -1 {
			v = append(v, cart.FieldViolation{Field: "min_version", Description: "must be -1 or more"})
		}
	}
	if len(v) > 0 {
		return nil, rpc.ToStatus(ctx, s.log, &cart.ValidationError{Violations: v}, queryErrors)
	}
	view, err := s.queries.GetCart(ctx, user, minVersion)
	if err != nil {
		return nil, rpc.ToStatus(ctx, s.log, err, queryErrors)
	}
	return &cartv1.GetCartResponse{Cart: cartViewToProto(view)}, nil
}
