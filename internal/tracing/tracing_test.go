package tracing_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/acme/cart/internal/tracing"
)

func TestInjectExtractRoundTrip(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	ctx, span := tp.Tracer("test").Start(context.Background(), "command")
	defer span.End()
	ts, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	ctx = trace.ContextWithSpanContext(ctx, span.SpanContext().WithTraceState(ts))

	tp1, ts1 := tracing.Inject(ctx)
	if tp1 == "" || ts1 != "vendor=abc" {
		t.Fatalf("Inject = %q, %q; want a traceparent and the tracestate", tp1, ts1)
	}
	sc := tracing.Extract(tp1, ts1)
	if !sc.IsValid() || !sc.IsRemote() || sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("Extract = %+v; want the span's context, remote", sc)
	}
	if sc.TraceState().Get("vendor") != "abc" {
		t.Errorf("tracestate = %q, want vendor=abc", sc.TraceState().String())
	}
}

func TestInjectWithoutSpanIsEmpty(t *testing.T) {
	_, span := noop.NewTracerProvider().Tracer("t").Start(context.Background(), "x")
	for name, ctx := range map[string]context.Context{
		"no span":   context.Background(),
		"noop span": trace.ContextWithSpan(context.Background(), span),
	} {
		if p, s := tracing.Inject(ctx); p != "" || s != "" {
			t.Errorf("%s: Inject = %q, %q; want nothing", name, p, s)
		}
	}
}

func TestExtractInvalid(t *testing.T) {
	for _, tp := range []string{"", "garbage", "00-00000000000000000000000000000000-0000000000000000-01"} {
		if sc := tracing.Extract(tp, ""); sc.IsValid() {
			t.Errorf("Extract(%q) = %+v; want invalid", tp, sc)
		}
	}
}

func TestEnabled(t *testing.T) {
	np := noop.NewTracerProvider()
	for _, tc := range []struct {
		name string
		tp   trace.TracerProvider
		want bool
	}{
		{"nil", nil, false},
		{"noop", np, false},
		{"noop pointer", &np, false},
		{"sdk", sdktrace.NewTracerProvider(), true},
	} {
		if got := tracing.Enabled(tc.tp); got != tc.want {
			t.Errorf("%s: Enabled = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOpenInjected(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	p, err := tracing.Open(context.Background(), "svc", tp)
	if err != nil {
		t.Fatal(err)
	}
	if p.TracerProvider != tp || p.Exporter != tracing.ExporterInjected {
		t.Fatalf("Open(injected) = %+v", p)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The owner of an injected provider flushes it: Shutdown left it running.
	rec := tracetest.NewSpanRecorder()
	tp.RegisterSpanProcessor(rec)
	_, span := tp.Tracer("t").Start(context.Background(), "after")
	span.End()
	if len(rec.Ended()) != 1 {
		t.Errorf("injected provider was shut down: %d spans recorded", len(rec.Ended()))
	}
}

func TestOpenFromEnvOff(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	p, err := tracing.Open(context.Background(), "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Exporter != tracing.ExporterOff || tracing.Enabled(p.TracerProvider) {
		t.Fatalf("Open with OTEL_SDK_DISABLED = %+v; want off", p)
	}
}

func TestOpenFromEnvOTLP(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	// Nothing listens there; the exporter dials lazily and Shutdown must
	// still return within its deadline.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	p, err := tracing.Open(context.Background(), "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Exporter != tracing.ExporterOTLPGRPC || !tracing.Enabled(p.TracerProvider) {
		t.Fatalf("Open = %+v; want otlp/grpc", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing was recorded, so there is nothing to wait for
	_ = p.Shutdown(ctx)
}
