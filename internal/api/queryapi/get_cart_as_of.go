package queryapi

import (
	"context"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/query"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// GetCartAsOf implements cartv1.CartQueryServiceServer: time travel by
// replaying the user's events up to a time or a version.
func (s *Server) GetCartAsOf(ctx context.Context, req *cartv1.GetCartAsOfRequest) (*cartv1.GetCartAsOfResponse, error) {
	user, err := s.user(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	if err := cart.ValidateUserID(user); err != nil {
		return nil, rpc.ToStatus(ctx, s.log, err, queryErrors)
	}
	var view query.CartView
	switch p := req.GetPoint().(type) {
	case *cartv1.GetCartAsOfRequest_AsOfVersion:
		view, err = s.queries.GetCartAsOfVersion(ctx, user, p.AsOfVersion)
	case *cartv1.GetCartAsOfRequest_AsOfTime:
		if verr := p.AsOfTime.CheckValid(); verr != nil {
			err = &cart.ValidationError{Violations: []cart.FieldViolation{{Field: "as_of_time", Description: verr.Error()}}}
			break
		}
		view, err = s.queries.GetCartAsOfTime(ctx, user, p.AsOfTime.AsTime())
	default:
		err = &cart.ValidationError{Violations: []cart.FieldViolation{{Field: "point", Description: "set as_of_time or as_of_version"}}}
	}
	if err != nil {
		return nil, rpc.ToStatus(ctx, s.log, err, queryErrors)
	}
	return &cartv1.GetCartAsOfResponse{Cart: cartViewToProto(view)}, nil
}
