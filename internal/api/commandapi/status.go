package commandapi

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/command"
)

// commandErrors maps the write side's own failures; everything else goes
// through the cases every service shares (rpc.ToStatus).
func commandErrors(err error) (error, bool) {
	switch {
	case errors.Is(err, command.ErrVersionMismatch):
		return rpc.Reason(codes.Aborted, err.Error(), "CART_VERSION_MISMATCH"), true
	case errors.Is(err, command.ErrCommandIDReused):
		return rpc.Reason(codes.AlreadyExists, err.Error(), "COMMAND_ID_REUSED"), true
	}
	return nil, false
}
