package tracing

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// untraced leaves out the calls that load balancers and tools make all the
// time and that tell nothing about a request: health checks and server
// reflection.
var untraced = filters.None(filters.HealthCheck(), filters.ServicePrefix("grpc.reflection."))

// ServerOptions put a server span on every RPC (bar health and reflection),
// continuing the caller's W3C trace context, so that the handlers' spans
// and logs share the caller's trace. With tracing off they are none.
func ServerOptions(tp trace.TracerProvider) []grpc.ServerOption {
	if !Enabled(tp) {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(Propagator()), otelgrpc.WithFilter(untraced)))}
}

// DialOptions put a client span on every call to another service and send
// the trace context along, so that the callee's spans join the trace. With
// tracing off they are none.
func DialOptions(tp trace.TracerProvider) []grpc.DialOption {
	if !Enabled(tp) {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(Propagator()), otelgrpc.WithFilter(untraced)))}
}
