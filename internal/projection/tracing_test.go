package projection

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/tracing"
)

// TestEventSpans checks the projector's spans: root flush spans, and under
// them one span per event with what the flush did with it and a link to
// the span context in the event's metadata when it has one.
func TestEventSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, command := tp.Tracer("test").Start(context.Background(), "append")
	command.End()
	traceparent, _ := tracing.Inject(trace.ContextWithSpan(context.Background(), command))

	b := newBuilder(t)
	traced := b.event("u", add("a", 1))
	m, err := cart.UnmarshalMetadata(traced.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	m.TraceParent = traceparent
	if traced.Metadata, err = cart.MarshalMetadata(m); err != nil {
		t.Fatal(err)
	}
	untraced := b.event("u", add("b", 1))
	redelivered := traced
	redelivered.Position = b.nextPos()
	poison := b.raw("u", cart.TypeItemAdded, []byte("{not json"))

	log := newFakeLog()
	log.addEvents(traced, untraced, redelivered, poison)
	p := start(t, Config{Source: log, Store: newFakeStore(), TracerProvider: tp})
	waitFor(t, p, "all events stored", storedThrough(poison.Position))

	flushes := map[trace.SpanID]bool{}
	var events []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case SpanFlush:
			if s.Parent().IsValid() {
				t.Errorf("flush span has parent %v; want a root", s.Parent())
			}
			flushes[s.SpanContext().SpanID()] = true
		case SpanEvent:
			events = append(events, s)
		}
	}
	want := []struct {
		ev      eventlog.Event
		outcome string
		linked  bool
	}{
		{traced, outcomeApplied, true},
		{untraced, outcomeApplied, false},
		{redelivered, outcomeSkipped, true},
		{poison, outcomeParked, false},
	}
	if len(events) != len(want) {
		t.Fatalf("got %d event spans, want %d", len(events), len(want))
	}
	for i, w := range want {
		s := events[i]
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.String()
		}
		if attrs["eventstore.position"] != w.ev.Position.String() || attrs["cart.projection.outcome"] != w.outcome || attrs["eventstore.stream"] != "cart-u" {
			t.Errorf("event span %d: %v; want position %s, outcome %s", i, attrs, w.ev.Position, w.outcome)
		}
		if !flushes[s.Parent().SpanID()] {
			t.Errorf("event span %d: parent %s is no flush span", i, s.Parent().SpanID())
		}
		links := s.Links()
		switch {
		case w.linked && (len(links) != 1 || links[0].SpanContext.SpanID() != command.SpanContext().SpanID() || links[0].SpanContext.TraceID() != command.SpanContext().TraceID()):
			t.Errorf("event span %d: links %v; want one to the command's span %s", i, links, command.SpanContext().SpanID())
		case !w.linked && len(links) != 0:
			t.Errorf("event span %d: links %v; want none", i, links)
		}
	}
}

// TestNoSpansWhenUntraced checks that the projector without a tracer
// provider works as before (and records nowhere).
func TestNoSpansWhenUntraced(t *testing.T) {
	b := newBuilder(t)
	ev := b.event("u", add("a", 1))
	log := newFakeLog()
	log.addEvents(ev)
	store := newFakeStore()
	p := start(t, Config{Source: log, Store: store})
	waitFor(t, p, "stored", storedThrough(ev.Position))
	if doc, ok := store.doc("u"); !ok || doc.Version != 0 {
		t.Fatalf("document = %+v, %v; want version 0", doc, ok)
	}
}
