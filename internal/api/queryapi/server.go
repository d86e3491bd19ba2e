package queryapi

import (
	"context"
	"errors"
	"log/slog"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/query"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// Server serves cart.v1.CartQueryService on top of query.Service. Each
// RPC lives in its own file (get_cart.go, ...); RPCs not implemented yet
// answer Unimplemented through the embedded type.
type Server struct {
	cartv1.UnimplementedCartQueryServiceServer
	queries *query.Service
	log     *slog.Logger
}

var _ cartv1.CartQueryServiceServer = (*Server)(nil)

// New returns the query API over queries; log receives the
// internal errors that callers only see as a generic message.
func New(queries *query.Service, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{queries: queries, log: log}
}

// user authorizes the caller on the requested user's cart and returns the
// user to read: an end user reads only their own cart (an empty user_id is
// theirs), a cart:any service any user's. Refused before anything is read.
func (s *Server) user(ctx context.Context, requested string) (string, error) {
	actor, err := auth.AuthorizeUser(ctx, requested)
	if errors.Is(err, auth.ErrUserRequired) {
		return "", nil // validation reports user_id with the other fields
	}
	if err != nil {
		return "", rpc.ToStatus(ctx, s.log, err, queryErrors)
	}
	return actor.UserID, nil
}
