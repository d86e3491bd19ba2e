package projection

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/tracing"
)

// tracerName is the instrumentation scope of the projector's spans.
const tracerName = "github.com/acme/cart/internal/projection"

// Span names of the projector. A flush is a root span (the projector works
// for no request); each event it stores gets a child span linked to the
// span context in the event's metadata (the command's append), so that
// the command's trace leads to the moment its events became readable.
const (
	SpanFlush = "projection.flush"
	SpanEvent = "projection.event"
)

// What a flush did with an event, the "cart.projection.outcome" attribute
// of its span.
const (
	outcomeApplied = "applied"
	outcomeSkipped = "skipped" // redelivered: the document already had it
	outcomeParked  = "parked"
)

// startFlush starts the span of a flush that stores events; a flush that
// only stores a checkpoint (the server's, while it skips other streams)
// is bookkeeping and gets none, so that an idle projector traces nothing.
func (p *Projector) startFlush(ctx context.Context, b *batch) (context.Context, trace.Span, time.Time) {
	start := time.Now()
	if len(b.entries) == 0 {
		return ctx, trace.SpanFromContext(context.Background()), start
	}
	ctx, span := p.tracer.Start(ctx, SpanFlush, trace.WithNewRoot(), trace.WithTimestamp(start), trace.WithAttributes(
		attribute.String("cart.projection.name", p.cfg.Name), attribute.Int("cart.projection.events", len(b.entries))))
	return ctx, span, start
}

func endFlush(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "flush failed")
	}
	span.End()
}

// traceEvents records a span per event of the flush, from the flush's start
// to now (its document is stored and readers were told), with what the
// flush did with it and a link to the trace of the command that wrote it.
// Events written untraced, or before tracing existed, have no link.
func (p *Projector) traceEvents(ctx context.Context, flush trace.Span, start time.Time, states []*cartState) {
	if !flush.IsRecording() {
		return
	}
	for _, s := range states {
		for i, en := range s.entries {
			opts := []trace.SpanStartOption{trace.WithTimestamp(start), trace.WithAttributes(
				attribute.String("eventstore.stream", en.ev.StreamID),
				attribute.Int64("eventstore.revision", en.ev.Revision),
				attribute.String("eventstore.position", en.ev.Position.String()),
				attribute.String("cart.event_type", en.ev.Type),
				attribute.String("cart.projection.outcome", s.outcomes[i]),
			)}
			if m, err := cart.UnmarshalMetadata(en.ev.Metadata); err == nil {
				if sc := tracing.Extract(m.TraceParent, m.TraceState); sc.IsValid() {
					opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc,
						Attributes: []attribute.KeyValue{attribute.String("cart.link", "command")}}))
				}
			}
			_, span := p.tracer.Start(ctx, SpanEvent, opts...)
			span.End()
		}
	}
}
