package readmodel

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/eventlog"
)

// TestCommandSpans checks that a MongoDB command under a traced operation
// gets a client span naming the command and collection, and that pings and
// untraced calls get none.
func TestCommandSpans(t *testing.T) {
	srv := embeddedmongo.StartForTest(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	opts := FerretDBCompat()
	opts.TracerProvider = tp
	c := connectWith(t, srv.URI(), opts)
	s := c.Store(srv.NewDatabaseName(t), Collections{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadCheckpoint(ctx, "untraced"); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("a ping and an untraced read made %d spans, want none", n)
	}

	tctx, parent := tp.Tracer("test").Start(ctx, "flush")
	if err := s.SaveCheckpoint(tctx, "traced", eventlog.Position{Commit: 7, Prepare: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadCheckpoint(tctx, "traced"); err != nil {
		t.Fatal(err)
	}
	parent.End()

	var ops []string
	for _, sp := range rec.Ended() {
		if sp.Name() == "flush" {
			continue
		}
		attrs := map[string]string{}
		for _, a := range sp.Attributes() {
			attrs[string(a.Key)] = a.Value.String()
		}
		if sp.SpanKind() != trace.SpanKindClient || sp.Parent().SpanID() != parent.SpanContext().SpanID() ||
			attrs["db.system.name"] != "mongodb" || attrs["db.operation.name"] != sp.Name() || attrs["db.collection.name"] != DefaultCheckpoints {
			t.Errorf("span %s %v kind %v parent %s; want a mongodb client span on %s under %s",
				sp.Name(), attrs, sp.SpanKind(), sp.Parent().SpanID(), DefaultCheckpoints, parent.SpanContext().SpanID())
		}
		ops = append(ops, sp.Name())
	}
	if len(ops) < 2 || ops[len(ops)-1] != "find" {
		t.Errorf("commands traced = %v; want the checkpoint's write then a find", ops)
	}
}
