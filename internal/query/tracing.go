package query

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span events of a GetCart with min_version, on the RPC's span: with the
// command's trace (linked from the projector's span of each event), one
// trace then tells when a write became visible to its reader.
const (
	EventMinVersionReached    = "projection reached min_version"
	EventMinVersionNotReached = "projection did not reach min_version"
)

// noteMinVersion adds the outcome of a read-your-writes wait to the span in
// ctx: reached (with the version read and how long the call waited for
// it), or not (stale cart, time budget spent). Other failures (the store,
// a cancelled call) are the RPC's error, recorded by its own span.
func noteMinVersion(ctx context.Context, minVersion int64, waited time.Duration, view CartView, err error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.Int64("cart.min_version", minVersion),
		attribute.Int64("cart.waited_ms", waited.Milliseconds()),
	}
	switch {
	case err == nil:
		span.AddEvent(EventMinVersionReached, trace.WithAttributes(append(attrs, attribute.Int64("cart.version", view.Version))...))
	case errors.Is(err, ErrNotReady):
		span.AddEvent(EventMinVersionNotReached, trace.WithAttributes(append(attrs, attribute.String("cart.reason", err.Error()))...))
	}
}
