package queryapi

import (
	"context"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cart"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// GetCartHistory implements cartv1.CartQueryServiceServer: the audit trail,
// read from the event log.
func (s *Server) GetCartHistory(ctx context.Context, req *cartv1.GetCartHistoryRequest) (*cartv1.GetCartHistoryResponse, error) {
	user, err := s.user(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	if err := cart.ValidateUserID(user); err != nil {
		return nil, rpc.ToStatus(ctx, s.log, err, queryErrors)
	}
	page, err := s.queries.GetCartHistory(ctx, user, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, rpc.ToStatus(ctx, s.log, err, queryErrors)
	}
	out := &cartv1.GetCartHistoryResponse{
		Events:        make([]*cartv1.CartEvent, 0, len(page.Entries)),
		NextPageToken: page.NextPageToken,
	}
	for _, e := range page.Entries {
		out.Events = append(out.Events, entryToProto(e))
	}
	return out, nil
}
