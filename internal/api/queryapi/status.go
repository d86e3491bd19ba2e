package queryapi

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/query"
)

// queryErrors maps the queries' own failures; everything else goes through
// the cases every service shares (rpc.ToStatus).
func queryErrors(err error) (error, bool) {
	switch {
	case errors.Is(err, query.ErrOutOfRange):
		return status.Error(codes.OutOfRange, err.Error()), true
	case errors.Is(err, query.ErrBadPageToken):
		return rpc.BadPageToken(err), true
	case errors.Is(err, query.ErrNotReady):
		// Retry soon: the projector is behind, no store is down.
		return rpc.WithDetails(status.New(codes.Unavailable, err.Error()), &errdetails.RetryInfo{}), true
	}
	return nil, false
}
