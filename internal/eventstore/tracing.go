package eventstore

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/tracing"
)

// Option configures a Store at Open.
type Option func(*Store)

// WithTracerProvider makes the Store put a client span on each read and
// append. The EventStoreDB client (v4.2.0) builds its gRPC connection
// itself and takes no dial options, so a gRPC stats handler cannot reach
// it: the adapter's calls are wrapped instead, which also shows the time a
// call waited for the store to answer (see conn.go). Subscriptions are
// long-lived and get no span; the projector traces what it applies.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *Store) { s.tracer = tracing.OrNoop(tp).Tracer(tracerName) }
}

// tracerName is the instrumentation scope of the adapter's spans.
const tracerName = "github.com/acme/cart/internal/eventstore"

// Span names of the adapter's calls; the stream is an attribute, not part
// of the name, so that names stay few.
const (
	spanRead    = "eventstore.read"
	spanReadAll = "eventstore.read_all"
	spanAppend  = "eventstore.append"
)

func (s *Store) startSpan(ctx context.Context, name, stream string) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{attribute.String("db.system.name", "eventstoredb")}
	if stream != "" {
		attrs = append(attrs, attribute.String("eventstore.stream", stream))
	}
	return s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endSpan ends a call's span with its outcome. A missing stream and a
// concurrency conflict are answers, not failures: they are marked, not
// recorded as errors.
func endSpan(span trace.Span, err error) {
	switch {
	case err == nil:
	case errors.Is(err, cart.ErrNotFound):
		span.SetAttributes(attribute.Bool("eventstore.not_found", true))
	case errors.Is(err, cart.ErrConcurrencyConflict):
		span.SetAttributes(attribute.Bool("eventstore.conflict", true))
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, "eventstore call failed")
	}
	span.End()
}
