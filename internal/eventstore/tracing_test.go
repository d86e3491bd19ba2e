package eventstore

import (
	"errors"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/standin"
)

// TestSpans checks the client spans of the adapter's calls: children of
// the caller's span, naming the stream, with answers (a conflict, a
// missing stream) marked rather than failed, and no span for health pings.
func TestSpans(t *testing.T) {
	srv := standin.Start(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s, err := Open(testCtx(t), srv.ConnectionString(), slog.New(slog.DiscardHandler), WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("a ping made %d spans, want none", n)
	}

	ctx, parent := tp.Tracer("test").Start(testCtx(t), "command")
	ev := []cart.Event{cart.ItemAdded{ProductID: "p", Quantity: 1, UnitPrice: eur(1)}}
	if _, err := s.AppendEvents(ctx, "traced", -1, meta("c1"), ev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvents(ctx, "traced", -1, meta("c2"), ev); !errors.Is(err, cart.ErrConcurrencyConflict) {
		t.Fatalf("second append at -1 = %v, want a conflict", err)
	}
	if err := s.LoadEvents(ctx, "traced", 0, func(int64, cart.Event, cart.Metadata) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadStream(ctx, "nobody", 0, 0); err != nil {
		t.Fatal(err)
	}
	parent.End()

	want := []struct {
		name, stream, marker string
	}{
		{spanAppend, "cart-traced", ""},
		{spanAppend, "cart-traced", "eventstore.conflict"},
		{spanRead, "cart-traced", ""},
		{spanRead, "cart-nobody", "eventstore.not_found"},
	}
	var got []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Name() != "command" {
			got = append(got, sp)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d spans, want %d", len(got), len(want))
	}
	for i, w := range want {
		sp := got[i]
		attrs := map[string]string{}
		for _, a := range sp.Attributes() {
			attrs[string(a.Key)] = a.Value.String()
		}
		if sp.Name() != w.name || attrs["eventstore.stream"] != w.stream || sp.SpanKind() != trace.SpanKindClient ||
			sp.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %d = %s %v kind %v parent %s; want %s on %s, a client child of %s",
				i, sp.Name(), attrs, sp.SpanKind(), sp.Parent().SpanID(), w.name, w.stream, parent.SpanContext().SpanID())
		}
		if w.marker != "" && attrs[w.marker] != "true" {
			t.Errorf("span %d: %s not set: %v", i, w.marker, attrs)
		}
		if sp.Status().Code.String() == "Error" {
			t.Errorf("span %d failed: %v", i, sp.Status())
		}
	}
}
