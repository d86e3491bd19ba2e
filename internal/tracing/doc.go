// Package tracing is the product's one place for OpenTelemetry traces, so
// that both services turn tracing on and off the same way and speak the
// same wire format.
//
// Open builds the process's TracerProvider from the standard OTEL_*
// environment (an OTLP exporter, off when nothing asks for one, so that an
// untraced deployment pays nothing), or takes one a test injects. The gRPC
// options put a span on every RPC of the servers and of the clients to
// other services, continuing an incoming W3C trace context. Inject and
// Extract carry a span context through an event's metadata as traceparent
// and tracestate strings, which is how the projector's span for an event
// links back to the command that wrote it (see docs/events.md).
package tracing
