package command

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/tracing"
)

// tracerName is the instrumentation scope of the write side's spans.
const tracerName = "github.com/acme/cart/internal/command"

// Span names of a command's steps, children of its RPC span: one trace
// shows where a slow or failed command spent its time, and how many rounds
// a concurrency conflict cost.
const (
	SpanLoad   = "load"
	SpanDecide = "decide"
	SpanAppend = "append"
)

// Where a load found the cart, the "cart.load" attribute of a load span:
// a cache hit reads nothing, so its span tells that no store call was made.
const (
	loadStream  = "stream"   // snapshot (if any) and events from the store
	loadCache   = "cache"    // the cached state, nothing read
	loadCatchUp = "catch-up" // the events written after the cached state
	// loadPresumedNew: not cached, decided as a new cart; nothing read
	// unless the append finds the cart exists.
	loadPresumedNew = "presumed-new"
)

func (h *Handler) startLoad(ctx context.Context, kind string) (context.Context, trace.Span) {
	return h.tracer.Start(ctx, SpanLoad, trace.WithAttributes(attribute.String("cart.load", kind)))
}

// endSpan ends a load span with the version it reached, or its error.
func endSpan(span trace.Span, st *state, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "load failed")
	} else if st != nil {
		span.SetAttributes(attribute.Int64("cart.version", st.version))
	}
	span.End()
}

// decide prices cmd and decides it on st's cart in a span. A failed price
// lookup is returned as priceErr (the catalog is down: nothing was
// decided), a refusal by the rules as err; a refusal is the caller's
// outcome, not a fault of the service, so it marks the span with the
// reason rather than as an error.
func (h *Handler) decide(ctx context.Context, st *state, cmd cart.Command) (events []cart.Event, priceErr, err error) {
	ctx, span := h.tracer.Start(ctx, SpanDecide, trace.WithAttributes(
		attribute.String("cart.command", cmd.Name()), attribute.Int64("cart.version", st.version)))
	defer span.End()
	priced, err := h.priced(ctx, st.cart, cmd)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "pricing failed")
		return nil, err, nil
	}
	events, err = cart.Decide(st.cart, priced)
	if err != nil {
		span.SetAttributes(attribute.String("cart.refused", err.Error()))
	}
	span.SetAttributes(attribute.Int("cart.events", len(events)))
	return events, nil, err
}

// append writes events in a span whose trace context every event's
// metadata carries, so that the projector's span for each event links to
// the append that wrote it. A concurrency conflict is a normal round of
// optimistic concurrency, marked but not an error.
func (h *Handler) append(ctx context.Context, userID string, expected int64, meta cart.Metadata, events []cart.Event) (int64, error) {
	ctx, span := h.tracer.Start(ctx, SpanAppend, trace.WithAttributes(
		attribute.Int64("cart.expected_version", expected), attribute.Int("cart.events", len(events))))
	defer span.End()
	meta.TraceParent, meta.TraceState = tracing.Inject(ctx)
	version, err := h.store.AppendEvents(ctx, userID, expected, meta, events)
	switch {
	case errors.Is(err, cart.ErrConcurrencyConflict):
		span.SetAttributes(attribute.Bool("cart.conflict", true))
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, "append failed")
	default:
		span.SetAttributes(attribute.Int64("cart.version", version))
	}
	return version, err
}
