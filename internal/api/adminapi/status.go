package adminapi

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/acme/cart/internal/admin"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/readside"
)

// adminErrors maps the read-model operations' own failures; everything else
// goes through the cases every service shares (rpc.ToStatus).
func adminErrors(err error) (error, bool) {
	switch {
	case errors.Is(err, admin.ErrBusy):
		return rpc.Reason(codes.FailedPrecondition, err.Error()+"; retry when it is done", "ADMIN_OPERATION_RUNNING"), true
	case errors.Is(err, admin.ErrBadPageToken):
		return rpc.BadPageToken(err), true
	case errors.Is(err, readside.ErrNotHolder):
		return rpc.Reason(codes.FailedPrecondition, err.Error(), "NOT_PROJECTOR_HOLDER"), true
	}
	return nil, false
}
