package command_test

import (
	"testing"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/tracing"
)

// TestHandleSpans checks the spans of commands run under a parent span (the
// RPC's, in the service): the steps of a first command, of a command on the
// cached cart, and of one that another writer beat to the append; and that
// each event's metadata carries the trace context of the append that wrote
// it.
func TestHandleSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	f := newFixture(command.Options{TracerProvider: tp})
	other := command.NewHandler(f.mem, priced(command.Options{})) // another replica, untraced

	type step struct {
		name, load string
		conflict   bool
	}
	for _, tc := range []struct {
		name   string
		before func()
		want   []step
	}{
		{"first command", nil, []step{{command.SpanLoad, "stream", false}, {command.SpanDecide, "", false}, {command.SpanAppend, "", false}}},
		{"cached cart", nil, []step{{command.SpanLoad, "cache", false}, {command.SpanDecide, "", false}, {command.SpanAppend, "", false}}},
		{"conflict", func() {
			f.spy.BeforeNextAppend(func() {
				if _, err := other.Handle(testCtx(t), command.Envelope{UserID: "u"}, addItem("z", 1)); err != nil {
					t.Errorf("other writer: %v", err)
				}
			})
		}, []step{
			{command.SpanLoad, "cache", false}, {command.SpanDecide, "", false}, {command.SpanAppend, "", true},
			{command.SpanLoad, "catch-up", false}, {command.SpanDecide, "", false}, {command.SpanAppend, "", false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			seen := len(rec.Ended())
			ctx, parent := tp.Tracer("test").Start(testCtx(t), "rpc")
			res, err := f.h.Handle(ctx, command.Envelope{UserID: "u", CommandID: uuid.NewString()}, addItem(uuid.NewString(), 1))
			parent.End()
			if err != nil {
				t.Fatal(err)
			}
			var got []sdktrace.ReadOnlySpan
			for _, s := range rec.Ended()[seen:] {
				if s.Name() != "rpc" {
					got = append(got, s)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d spans %v, want %v", len(got), names(got), tc.want)
			}
			var lastAppend sdktrace.ReadOnlySpan
			for i, s := range got {
				w := tc.want[i]
				if s.Name() != w.name || s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
					t.Errorf("span %d = %s (parent %s); want %s, a child of the RPC span %s", i, s.Name(), s.Parent().SpanID(), w.name, parent.SpanContext().SpanID())
				}
				if w.load != "" && attr(s, "cart.load") != w.load {
					t.Errorf("span %d: cart.load = %q, want %q", i, attr(s, "cart.load"), w.load)
				}
				if (attr(s, "cart.conflict") == "true") != w.conflict {
					t.Errorf("span %d: cart.conflict = %q, want %v", i, attr(s, "cart.conflict"), w.conflict)
				}
				if s.Name() == command.SpanAppend {
					lastAppend = s
				}
			}
			m := f.mem.Metadata("u", res.Version)
			sc := tracing.Extract(m.TraceParent, m.TraceState)
			if sc.TraceID() != parent.SpanContext().TraceID() || sc.SpanID() != lastAppend.SpanContext().SpanID() {
				t.Errorf("event metadata traceparent %q; want the successful append span %s of trace %s", m.TraceParent, lastAppend.SpanContext().SpanID(), parent.SpanContext().TraceID())
			}
		})
	}
}

// TestHandleUntracedMetadata checks that without a span the events carry
// no trace context at all.
func TestHandleUntracedMetadata(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{})
	res := f.do(t, command.Envelope{UserID: "u"}, addItem("a", 1))
	if m := f.mem.Metadata("u", res.Version); m.TraceParent != "" || m.TraceState != "" {
		t.Errorf("metadata = %+v; want no trace context", m)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name()
		if l := attr(s, "cart.load"); l != "" {
			out[i] += "(" + l + ")"
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}
