package readmodel

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The MongoDB driver's own OpenTelemetry instrumentation (contrib's
// otelmongo) exists only for driver v1 on the module proxy; for v2 the
// driver's command monitor is the hook, so this file turns its events into
// client spans.

// tracerName is the instrumentation scope of the read model's spans.
const tracerName = "github.com/acme/cart/internal/readmodel"

// spanKey identifies one command in flight: request IDs are unique per
// connection.
type spanKey struct {
	conn string
	req  int64
}

// commandSpans starts a span when the driver sends a command and ends it
// when the reply (or failure) arrives. Only commands issued under a traced
// operation (an RPC, a projector flush) get one: a driver call with no
// trace around it (a periodic check) would only add root spans that
// explain nothing. Health pings are left out for the same reason.
type commandSpans struct {
	tracer trace.Tracer
	mu     sync.Mutex
	open   map[spanKey]trace.Span
}

func commandMonitor(tp trace.TracerProvider) *event.CommandMonitor {
	cs := &commandSpans{tracer: tp.Tracer(tracerName), open: map[spanKey]trace.Span{}}
	return &event.CommandMonitor{Started: cs.started, Succeeded: cs.succeeded, Failed: cs.failed}
}

func (cs *commandSpans) started(ctx context.Context, e *event.CommandStartedEvent) {
	if e.CommandName == "ping" || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.String("db.system.name", "mongodb"),
		attribute.String("db.namespace", e.DatabaseName),
		attribute.String("db.operation.name", e.CommandName),
	}
	// The command's first element names the collection (find: "carts").
	if el, err := e.Command.IndexErr(0); err == nil {
		if coll, ok := el.Value().StringValueOK(); ok {
			attrs = append(attrs, attribute.String("db.collection.name", coll))
		}
	}
	_, span := cs.tracer.Start(ctx, e.CommandName, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	cs.mu.Lock()
	cs.open[spanKey{e.ConnectionID, e.RequestID}] = span
	cs.mu.Unlock()
}

func (cs *commandSpans) take(e event.CommandFinishedEvent) trace.Span {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	k := spanKey{e.ConnectionID, e.RequestID}
	span := cs.open[k]
	delete(cs.open, k)
	return span
}

func (cs *commandSpans) succeeded(_ context.Context, e *event.CommandSucceededEvent) {
	if span := cs.take(e.CommandFinishedEvent); span != nil {
		span.End()
	}
}

func (cs *commandSpans) failed(_ context.Context, e *event.CommandFailedEvent) {
	if span := cs.take(e.CommandFinishedEvent); span != nil {
		span.RecordError(e.Failure)
		span.SetStatus(codes.Error, "mongodb command failed")
		span.End()
	}
}
