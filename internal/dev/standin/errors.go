package standin

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Trailer keys and values of the server's RpcExceptions. The v4 client reads
// "exception" to recognise stream-deleted (and then indexes "stream-name"
// unconditionally, so the two always travel together).
const (
	trailerException      = "exception"
	trailerStreamName     = "stream-name"
	trailerExpected       = "expected-version"
	trailerActual         = "actual-version"
	trailerRequiredMeta   = "required-metadata-properties"
	trailerMaxAppendSize  = "maximum-append-size"
	exStreamDeleted       = "stream-deleted"
	exWrongVersion        = "wrong-expected-version"
	exMissingRequiredMeta = "missing-required-metadata-property"
	exMaxAppendSize       = "maximum-append-size-exceeded"
)

// failWith returns a status error and attaches trailers to the call, as the
// server's RpcException does.
func failWith(ctx context.Context, code codes.Code, msg string, kv ...string) error {
	if len(kv) > 0 {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(kv...))
	}
	return status.Error(code, msg)
}

func streamDeletedStatus(ctx context.Context, stream string) error {
	return failWith(ctx, codes.FailedPrecondition, fmt.Sprintf("Event stream '%s' is deleted.", stream),
		trailerException, exStreamDeleted, trailerStreamName, stream)
}

func wrongVersionStatus(ctx context.Context, op string, e wrongVersionError) error {
	msg := fmt.Sprintf("%s failed due to WrongExpectedVersion. Stream: %s, Expected version: %d, Actual version: %d",
		op, e.stream, e.expected, e.actual)
	return failWith(ctx, codes.FailedPrecondition, msg,
		trailerException, exWrongVersion, trailerStreamName, e.stream,
		trailerExpected, strconv.FormatInt(e.expected, 10), trailerActual, strconv.FormatInt(e.actual, 10))
}

// storeStatus maps store errors onto what the server answers.
func storeStatus(ctx context.Context, op string, err error) error {
	var deleted streamDeletedError
	var wrong wrongVersionError
	switch {
	case errors.As(err, &deleted):
		return streamDeletedStatus(ctx, deleted.stream)
	case errors.As(err, &wrong):
		return wrongVersionStatus(ctx, op, wrong)
	case errors.Is(err, errUnavailable):
		return status.Error(codes.Unavailable, "Server Is Not Ready")
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

func invalidArgument(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
