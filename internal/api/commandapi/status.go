package commandapi

import (
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// commandErrors maps the write side's own failures; everything else goes
// through the cases every service shares (rpc.ToStatus).
func commandErrors(err error) (error, bool) {
	var (
		pc *cart.PriceChangedError
		nf *cart.ProductNotFoundError
	)
	switch {
	case errors.As(err, &pc):
		// The app learns every current price in one answer, so it can show
		// them and resend (or check out with accept_price_changes).
		details := &cartv1.PriceChanges{}
		for _, c := range pc.Changes {
			details.Changes = append(details.Changes, &cartv1.PriceChange{
				ProductId: c.ProductID, OldUnitPrice: rpc.MoneyToProto(c.Was), NewUnitPrice: rpc.MoneyToProto(c.Now),
			})
		}
		return rpc.WithDetails(status.New(codes.FailedPrecondition, pc.Error()),
			&errdetails.ErrorInfo{Reason: "PRICE_CHANGED", Domain: rpc.ErrorDomain}, details), true
	case errors.As(err, &nf):
		return rpc.WithDetails(status.New(codes.FailedPrecondition, nf.Error()), &errdetails.ErrorInfo{
			Reason: "PRODUCT_NOT_FOUND", Domain: rpc.ErrorDomain,
			Metadata: map[string]string{"product_ids": strings.Join(nf.ProductIDs, ",")},
		}), true
	case errors.Is(err, command.ErrVersionMismatch):
		return rpc.Reason(codes.Aborted, err.Error(), "CART_VERSION_MISMATCH"), true
	case errors.Is(err, command.ErrCommandIDReused):
		return rpc.Reason(codes.AlreadyExists, err.Error(), "COMMAND_ID_REUSED"), true
	}
	return nil, false
}
