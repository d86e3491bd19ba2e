package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/acme/cart/internal/admin"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/query"
)

// ErrorDomain is the ErrorInfo domain of this API's business-rule errors.
const ErrorDomain = "cart.acme.com"

// toStatus is the ONE place where errors become gRPC statuses, so that every
// RPC of every service answers the same failure with the same code. Anything
// unexpected is Internal with a generic message; the full error goes to the
// log only, since it may carry internals callers must not see.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var (
		ve *cart.ValidationError
		re *cart.RuleError
		de *cart.DecodeError
	)
	switch {
	case errors.As(err, &ve):
		br := &errdetails.BadRequest{}
		for _, v := range ve.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		return withDetails(status.New(codes.InvalidArgument, ve.Error()), br)
	case errors.As(err, &re):
		return withDetails(status.New(codes.FailedPrecondition, re.Message),
			&errdetails.ErrorInfo{Reason: re.Reason, Domain: ErrorDomain})
	case errors.As(err, &de):
		// Only replays of the log meet undecodable events (the projector
		// parks them); the caller learns why the past cannot be computed.
		log.WarnContext(ctx, "undecodable event in a replay", "err", err)
		return withDetails(status.New(codes.FailedPrecondition, "the cart's history holds an event this server cannot read: "+de.Error()),
			&errdetails.ErrorInfo{Reason: "CART_EVENT_UNREADABLE", Domain: ErrorDomain})
	case errors.Is(err, command.ErrVersionMismatch):
		return withDetails(status.New(codes.Aborted, err.Error()),
			&errdetails.ErrorInfo{Reason: "CART_VERSION_MISMATCH", Domain: ErrorDomain})
	case errors.Is(err, cart.ErrConcurrencyConflict):
		return status.Error(codes.Aborted, "the cart changed concurrently too often; retry")
	case errors.Is(err, command.ErrCommandIDReused):
		return withDetails(status.New(codes.AlreadyExists, err.Error()),
			&errdetails.ErrorInfo{Reason: "COMMAND_ID_REUSED", Domain: ErrorDomain})
	case errors.Is(err, admin.ErrBusy):
		return withDetails(status.New(codes.FailedPrecondition, err.Error()+"; retry when it is done"),
			&errdetails.ErrorInfo{Reason: "ADMIN_OPERATION_RUNNING", Domain: ErrorDomain})
	case errors.Is(err, query.ErrOutOfRange):
		return status.Error(codes.OutOfRange, err.Error())
	case errors.Is(err, query.ErrBadPageToken):
		return withDetails(status.New(codes.InvalidArgument, err.Error()), &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "page_token", Description: err.Error()}},
		})
	case errors.Is(err, cart.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, query.ErrNotReady):
		return withDetails(status.New(codes.Unavailable, err.Error()),
			&errdetails.RetryInfo{})
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

// withDetails attaches machine-readable details; should that fail (it cannot
// for these well-known messages), the plain status still goes out.
func withDetails(st *status.Status, details ...protoadapt.MessageV1) error {
	if d, err := st.WithDetails(details...); err == nil {
		return d.Err()
	}
	return st.Err()
}
