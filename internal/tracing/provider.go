package tracing

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Exporter names what a Provider sends its spans to, for the start-up log.
const (
	ExporterOff      = "off"
	ExporterInjected = "injected"
	ExporterOTLPGRPC = "otlp/grpc"
	ExporterOTLPHTTP = "otlp/http"
)

// Provider is the process's tracer provider and how to flush it at exit,
// so that a service's last spans are not lost when it stops.
type Provider struct {
	trace.TracerProvider
	// Exporter is one of the Exporter names: what the spans go to.
	Exporter string
	shutdown func(context.Context) error
}

// Shutdown flushes the spans still buffered and stops the exporter; the
// service calls it last, after its servers and projector stopped. A
// provider that was injected or is off has nothing to flush.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.shutdown == nil {
		return nil
	}
	if err := p.shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// Open returns injected as is when it is not nil (a test's in-memory
// recorder: its owner flushes it), and otherwise the provider the OTEL_*
// environment asks for (see exporterFromEnv), with the resource
// service.name set to service unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise. Sampling (OTEL_TRACES_SAMPLER) and
// batching (OTEL_BSP_*) follow the environment too, as the SDK reads them.
func Open(ctx context.Context, service string, injected trace.TracerProvider) (*Provider, error) {
	if injected != nil {
		return &Provider{TracerProvider: injected, Exporter: ExporterInjected}, nil
	}
	kind, err := exporterFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	if kind == ExporterOff {
		return &Provider{TracerProvider: noop.NewTracerProvider(), Exporter: ExporterOff}, nil
	}
	var exp sdktrace.SpanExporter
	if kind == ExporterOTLPGRPC {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %s exporter: %w", kind, err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // after service, so that OTEL_SERVICE_NAME wins
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Provider{TracerProvider: tp, Exporter: kind, shutdown: tp.Shutdown}, nil
}

// exporterFromEnv reads the standard variables the way the OpenTelemetry
// specification defines them, with one product decision: no exporter and
// no OTLP endpoint configured means off, not "OTLP to localhost", so that a
// service started without any OTEL_* variable neither traces nor tries to
// reach a collector that is not there.
//
//   - OTEL_SDK_DISABLED=true: off, whatever else is set.
//   - OTEL_TRACES_EXPORTER: "none" is off, "otlp" is on; others are refused
//     (a typo must not silently disable tracing).
//   - unset exporter: on only when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
//     OTEL_EXPORTER_OTLP_ENDPOINT is set.
//   - OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL:
//     "http/protobuf" (the specification's default) or "grpc".
//
// The exporters read the endpoint, headers, timeout and TLS variables
// themselves.
func exporterFromEnv(getenv func(string) string) (string, error) {
	if v := strings.TrimSpace(getenv("OTEL_SDK_DISABLED")); v != "" {
		disabled, err := strconv.ParseBool(v)
		if err != nil {
			return "", fmt.Errorf("tracing: OTEL_SDK_DISABLED=%q: want true or false", v)
		}
		if disabled {
			return ExporterOff, nil
		}
	}
	switch v := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); v {
	case "none":
		return ExporterOff, nil
	case "otlp":
	case "":
		if getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
			return ExporterOff, nil
		}
	default:
		return "", fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q: this build knows otlp and none", v)
	}
	proto := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if proto == "" {
		proto = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	switch proto {
	case "", "http/protobuf":
		return ExporterOTLPHTTP, nil
	case "grpc":
		return ExporterOTLPGRPC, nil
	default:
		return "", fmt.Errorf("tracing: OTLP protocol %q: this build knows grpc and http/protobuf", proto)
	}
}

// Enabled tells whether tp records anything, so that instrumentation that
// costs even when its spans are dropped (a driver's command monitor, a
// gRPC stats handler) is not installed when tracing is off.
func Enabled(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return false
	}
	return true
}

// OrNoop is tp, or a provider that records nothing when tp is nil, so that
// a package's Config may leave its TracerProvider unset.
func OrNoop(tp trace.TracerProvider) trace.TracerProvider {
	if tp == nil {
		return noop.NewTracerProvider()
	}
	return tp
}
