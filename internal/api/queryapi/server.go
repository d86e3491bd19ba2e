package queryapi

import (
	"log/slog"

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
