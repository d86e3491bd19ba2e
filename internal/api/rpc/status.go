package rpc

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/cart"
)

// ErrorDomain is the ErrorInfo domain of this API's business-rule errors.
const ErrorDomain = "cart.acme.com"

// Mapping turns the errors only one service knows (its package's sentinels)
// into statuses; ok is false for an error it does not know, which then goes
// through the shared cases of ToStatus.
type Mapping func(err error) (st error, ok bool)

// ToStatus is the ONE place where errors become gRPC statuses, so that every
// RPC of every service answers the same failure with the same code: the
// service's own Mapping first (its sentinels may wrap shared ones), then the
// cases every service shares. Anything unexpected is Internal with a generic
// message; the full error goes to the log only, since it may carry
// internals callers must not see.
func ToStatus(ctx context.Context, log *slog.Logger, err error, own Mapping) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if own != nil {
		if st, ok := own(err); ok {
			return st
		}
	}
	var (
		ve *cart.ValidationError
		re *cart.RuleError
		de *cart.DecodeError
	)
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, "missing or invalid bearer token")
	case errors.Is(err, auth.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, "this caller may not act on that cart")
	case errors.Is(err, auth.ErrUserRequired):
		return WithDetails(status.New(codes.InvalidArgument, "user_id is required when a service acts for a user"), &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "user_id", Description: "required for a cart:any caller"}},
		})
	case errors.As(err, &ve):
		br := &errdetails.BadRequest{}
		for _, v := range ve.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		return WithDetails(status.New(codes.InvalidArgument, ve.Error()), br)
	case errors.As(err, &re):
		return WithDetails(status.New(codes.FailedPrecondition, re.Message),
			&errdetails.ErrorInfo{Reason: re.Reason, Domain: ErrorDomain})
	case errors.As(err, &de):
		// Only replays of the log meet undecodable events (the projector
		// parks them); the caller learns why the past cannot be computed.
		log.WarnContext(ctx, "undecodable event in a replay", "err", err)
		return WithDetails(status.New(codes.FailedPrecondition, "the cart's history holds an event this server cannot read: "+de.Error()),
			&errdetails.ErrorInfo{Reason: "CART_EVENT_UNREADABLE", Domain: ErrorDomain})
	case errors.Is(err, cart.ErrConcurrencyConflict):
		return status.Error(codes.Aborted, "the cart changed concurrently too often; retry")
	case errors.Is(err, cart.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, cart.ErrUnavailable):
		log.WarnContext(ctx, "store unavailable", "err", err)
		return status.Error(codes.Unavailable, "a backing store is unavailable; retry later")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	default:
		log.ErrorContext(ctx, "internal error", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
}

// WithDetails attaches machine-readable details; should that fail (it cannot
// for these well-known messages), the plain status still goes out.
func WithDetails(st *status.Status, details ...protoadapt.MessageV1) error {
	if d, err := st.WithDetails(details...); err == nil {
		return d.Err()
	}
	return st.Err()
}

// Reason is a FAILED_PRECONDITION-style status with an ErrorInfo reason in
// this API's domain, the shape every service's own rule errors take.
func Reason(code codes.Code, msg, reason string) error {
	return WithDetails(status.New(code, msg), &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain})
}

// BadPageToken is the INVALID_ARGUMENT of a page token the server did not
// issue for the request, naming the page_token field as AIP-158 expects.
func BadPageToken(err error) error {
	return WithDetails(status.New(codes.InvalidArgument, err.Error()), &errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "page_token", Description: err.Error()}},
	})
}
