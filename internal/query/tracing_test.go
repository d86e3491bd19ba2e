package query

import (
	"errors"
	"strconv"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestGetCartMinVersionSpanEvents checks the span event a GetCart adds to
// its caller's span: reached (at once, or after waiting for the projector)
// with the version read, not reached for a stale cart, and nothing without
// min_version.
func TestGetCartMinVersionSpanEvents(t *testing.T) {
	for _, tc := range []struct {
		name       string
		doc        int64
		stale      bool
		min        int64
		catchUp    bool // the projector moves the cart to min while GetCart waits
		wantEvent  string
		wantVer    string
		wantErrNot bool
	}{
		{name: "no min_version", doc: 1, min: -1},
		{name: "already there", doc: 3, min: 2, wantEvent: EventMinVersionReached, wantVer: "3"},
		{name: "after a wait", doc: 1, min: 2, catchUp: true, wantEvent: EventMinVersionReached, wantVer: "2"},
		{name: "stale", doc: 1, stale: true, min: 2, wantEvent: EventMinVersionNotReached, wantErrNot: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			svc, carts, w := newService(docAt("u", tc.doc, tc.stale))
			if tc.catchUp {
				go func() {
					deadline := time.Now().Add(10 * time.Second)
					for w.openCount() == 0 && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond)
					}
					d := docAt("u", tc.min, false)
					carts.set(d)
					w.NotifyDoc(d)
				}()
			}
			ctx, span := tp.Tracer("test").Start(testCtx(t), "GetCart")
			_, err := svc.GetCart(ctx, "u", tc.min)
			span.End()
			if tc.wantErrNot != errors.Is(err, ErrNotReady) || (!tc.wantErrNot && err != nil) {
				t.Fatalf("GetCart = %v", err)
			}
			events := rec.Ended()[0].Events()
			if tc.wantEvent == "" {
				if len(events) != 0 {
					t.Fatalf("events %v, want none", events)
				}
				return
			}
			if len(events) != 1 || events[0].Name != tc.wantEvent {
				t.Fatalf("events %v, want one %q", events, tc.wantEvent)
			}
			attrs := map[string]string{}
			for _, a := range events[0].Attributes {
				attrs[string(a.Key)] = a.Value.String()
			}
			if attrs["cart.min_version"] != strconv.FormatInt(tc.min, 10) || (tc.wantVer != "" && attrs["cart.version"] != tc.wantVer) {
				t.Errorf("event attributes %v; want min_version %d, version %s", attrs, tc.min, tc.wantVer)
			}
		})
	}
}
