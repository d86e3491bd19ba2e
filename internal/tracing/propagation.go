package tracing

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Propagator is the wire format of trace context between processes: W3C
// TraceContext (traceparent, tracestate) and W3C Baggage, what every
// OpenTelemetry SDK and most gateways speak by default.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Inject returns the W3C traceparent and tracestate of the span in ctx, to
// store in an event's metadata; both are empty when ctx carries no valid
// span context (tracing off), so that untraced events carry nothing.
func Inject(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// Extract parses what Inject returned back into a span context, marked
// remote; it is invalid (check IsValid) when traceparent is empty or
// malformed, which readers treat as "no trace to link to", never as an
// error: older events have no trace context.
func Extract(traceparent, tracestate string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	c := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		c["tracestate"] = tracestate
	}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), c))
}
