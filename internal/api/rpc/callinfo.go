package rpc

import (
	"context"
	"log/slog"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/acme/cart/internal/auth"
)

// MaxCorrelationIDLength bounds a caller's x-correlation-id: longer (or
// non-printable) values are replaced by a generated ID rather than stored
// on events and written to logs.
const MaxCorrelationIDLength = 128

// callKey keys the call record in a call's context.
type callKey struct{}

// call is what the one log line of an RPC tells about it beyond method,
// code and duration, gathered as the call passes the interceptors: the
// correlation ID first, the principal and the cart's user once the caller
// is authenticated (which happens inside the logging interceptor, so that
// refused calls are logged too).
type call struct {
	correlationID string
	// rejected is the length of a caller's correlation ID that was
	// replaced, 0 if none was.
	rejected  int
	principal string
	// user is the cart the request is about: its user_id, or the caller's
	// own when an end user left it out.
	user    string
	hasUser bool
}

// userRequest is a request about one user's cart.
type userRequest interface{ GetUserId() string }

// beginCall starts the call record: the caller's correlation ID if it is
// valid, else a new one, put in the context for the handlers (see
// CorrelationID), returned to the caller in the x-correlation-id response
// header by setHeader, and set on the RPC's span.
func beginCall(ctx context.Context, req any, setHeader func(metadata.MD) error) context.Context {
	c := &call{correlationID: FirstHeader(ctx, HeaderCorrelationID)}
	if !ValidCorrelationID(c.correlationID) {
		c.rejected = len(c.correlationID)
		c.correlationID = uuid.NewString()
	}
	if r, ok := req.(userRequest); ok {
		c.user, c.hasUser = r.GetUserId(), true
	}
	_ = setHeader(metadata.Pairs(HeaderCorrelationID, c.correlationID)) // fails only once headers were sent: too late anyway
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("cart.correlation_id", c.correlationID))
	}
	return context.WithValue(ctx, callKey{}, c)
}

// ValidCorrelationID tells whether a caller's correlation ID may be kept:
// 1 to MaxCorrelationIDLength visible ASCII characters (no spaces, no
// control characters), so that it cannot forge log lines or bloat events.
func ValidCorrelationID(id string) bool {
	if id == "" || len(id) > MaxCorrelationIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// CorrelationID is the call's correlation ID, the one the caller gets back
// in the x-correlation-id response header, for the handlers to store on
// events. Outside a server built by NewServer (a handler called directly)
// it is the request header as is.
func CorrelationID(ctx context.Context) string {
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		return c.correlationID
	}
	return FirstHeader(ctx, HeaderCorrelationID)
}

// notePrincipal records the verified caller (and with it the cart the
// request is about) once authentication let the call through; it runs
// right after the authentication interceptor.
func notePrincipal(ctx context.Context) {
	c, ok := ctx.Value(callKey{}).(*call)
	if !ok {
		return
	}
	c.principal = PrincipalKey(ctx)
	if c.hasUser {
		if actor, err := auth.AuthorizeUser(ctx, c.user); err == nil {
			c.user = actor.UserID
		}
	}
}

func principalUnaryInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	notePrincipal(ctx)
	return handler(ctx, req)
}

func principalStreamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	notePrincipal(ss.Context())
	return handler(srv, ss)
}

// callAttrs are the log attributes of the call in ctx: trace and span IDs
// when the call is traced, correlation ID, principal, user and command.
func callAttrs(ctx context.Context, method string) []any {
	attrs := make([]any, 0, 14)
	attrs = append(attrs, "command", method[strings.LastIndexByte(method, '/')+1:])
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, "trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	}
	c, ok := ctx.Value(callKey{}).(*call)
	if !ok {
		return append(attrs, "correlation_id", FirstHeader(ctx, HeaderCorrelationID))
	}
	attrs = append(attrs, "correlation_id", c.correlationID)
	if c.rejected > 0 {
		attrs = append(attrs, slog.Int("rejected_correlation_id_length", c.rejected))
	}
	if c.principal != "" {
		attrs = append(attrs, "principal", c.principal)
	}
	if c.user != "" {
		attrs = append(attrs, "user", c.user)
	}
	return attrs
}

// contextStream is a server stream with the context the interceptors made.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s contextStream) Context() context.Context { return s.ctx }
