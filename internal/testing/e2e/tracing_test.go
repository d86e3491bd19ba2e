package e2e_test

import (
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/query"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// TestOneTraceFromCommandToVisible drives AddItem with a caller's W3C
// trace context and then GetCart with min_version, both services
// recording into one in-memory exporter, and checks that the spans tell
// "command → append → projection → visible": the caller's trace goes on
// in command-svc's RPC span, load, decide and append are its children,
// the projector's span for the event links to the append, and GetCart's
// span records when the projection reached the version. The correlation ID
// the caller sent comes back in a response header of both services and is
// stored on the event.
func TestOneTraceFromCommandToVisible(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(ctx(t)) })
	e := newEnv(t, withTracing(tp))

	const (
		callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		callerSpan  = "00f067aa0ba902b7"
		correlation = "checkout-flow-42"
	)
	c := metadata.AppendToOutgoingContext(ctx(t),
		"traceparent", "00-"+callerTrace+"-"+callerSpan+"-01", "x-correlation-id", correlation)
	e.show("sku-1", eur(5, 0))
	var addHeader metadata.MD
	resp, err := e.cmd.AddItem(c, &cartv1.AddItemRequest{UserId: "traced", ProductId: "sku-1", Quantity: 1}, grpc.Header(&addHeader))
	if err != nil {
		t.Fatal(err)
	}
	if got := addHeader.Get("x-correlation-id"); len(got) != 1 || got[0] != correlation {
		t.Errorf("AddItem's x-correlation-id header = %q, want %q", got, correlation)
	}
	var getHeader metadata.MD
	if _, err := e.query.GetCart(ctx(t), &cartv1.GetCartRequest{UserId: "traced", MinVersion: proto.Int64(resp.GetVersion())},
		grpc.Header(&getHeader)); err != nil {
		t.Fatal(err)
	}
	if got := getHeader.Get("x-correlation-id"); len(got) != 1 || got[0] == "" {
		t.Errorf("GetCart's x-correlation-id header = %q, want one generated", got)
	}

	// The server spans end as the replies go out; the projector's in its
	// flush: wait for all of them.
	var spans tracetest.SpanStubs
	find := func(name string) []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, s := range spans {
			if s.Name == name {
				out = append(out, s)
			}
		}
		return out
	}
	addName := strings.TrimPrefix(cartv1.CartCommandService_AddItem_FullMethodName, "/")
	getName := strings.TrimPrefix(cartv1.CartQueryService_GetCart_FullMethodName, "/")
	deadline := time.Now().Add(20 * time.Second)
	for {
		spans = exp.GetSpans()
		if len(find(addName)) > 0 && len(find(getName)) > 0 && len(find(projection.SpanEvent)) > 0 && len(find(projection.SpanFlush)) > 0 {
			break
		}
		if time.Now().After(deadline) {
			names := make([]string, 0, len(spans))
			for _, s := range spans {
				names = append(names, s.Name)
			}
			t.Fatalf("spans after 20s: %q", names)
		}
		time.Sleep(20 * time.Millisecond)
	}

	add := find(addName)[0]
	if got := add.SpanContext.TraceID().String(); got != callerTrace {
		t.Errorf("AddItem's server span is in trace %s, want the caller's %s", got, callerTrace)
	}
	if got := add.Parent.SpanID().String(); got != callerSpan {
		t.Errorf("AddItem's server span has parent %s, want the caller's span %s", got, callerSpan)
	}
	if add.SpanKind != trace.SpanKindServer {
		t.Errorf("AddItem span kind = %v, want server", add.SpanKind)
	}
	// load, decide and append are children of the RPC span.
	var appendSpan tracetest.SpanStub
	for _, name := range []string{command.SpanLoad, command.SpanDecide, command.SpanAppend} {
		var child *tracetest.SpanStub
		for _, s := range find(name) {
			if s.Parent.SpanID() == add.SpanContext.SpanID() {
				child = &s
				break
			}
		}
		if child == nil {
			t.Errorf("no %q span under AddItem's server span", name)
			continue
		}
		if child.SpanContext.TraceID() != add.SpanContext.TraceID() {
			t.Errorf("%q span in trace %s, want %s", name, child.SpanContext.TraceID(), add.SpanContext.TraceID())
		}
		if name == command.SpanAppend {
			appendSpan = *child
		}
	}

	// The projector's span for the event links to the append.
	var linked bool
	for _, ev := range find(projection.SpanEvent) {
		for _, l := range ev.Links {
			if l.SpanContext.TraceID().String() == callerTrace && l.SpanContext.SpanID() == appendSpan.SpanContext.SpanID() {
				linked = true
				if ev.Parent.SpanID() == (trace.SpanID{}) {
					t.Errorf("the projector's event span has no parent (want its flush)")
				}
			}
		}
	}
	if !linked {
		t.Errorf("no %q span links to the append span %s of trace %s", projection.SpanEvent, appendSpan.SpanContext.SpanID(), callerTrace)
	}
	var flushes int
	for _, f := range find(projection.SpanFlush) {
		if f.Parent.IsValid() {
			t.Errorf("flush span has parent %v; a flush is a root span", f.Parent)
		}
		flushes++
	}
	if flushes == 0 {
		t.Error("no flush span")
	}

	// GetCart's span says when the projection reached the version.
	get := find(getName)[0]
	var reached bool
	for _, ev := range get.Events {
		if ev.Name == query.EventMinVersionReached {
			for _, a := range ev.Attributes {
				if a.Key == "cart.version" && a.Value.AsInt64() == resp.GetVersion() {
					reached = true
				}
			}
		}
	}
	if !reached {
		t.Errorf("GetCart's span has no %q event with cart.version %d: %+v", query.EventMinVersionReached, resp.GetVersion(), get.Events)
	}

	// The correlation ID is on the event.
	h, err := e.query.GetCartHistory(ctx(t), &cartv1.GetCartHistoryRequest{UserId: "traced"})
	if err != nil {
		t.Fatal(err)
	}
	if evs := h.GetEvents(); len(evs) != 1 || evs[0].GetCorrelationId() != correlation {
		t.Errorf("history = %v, want one event with correlation_id %q", evs, correlation)
	}
}
