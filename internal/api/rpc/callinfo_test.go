package rpc_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/tracing"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// records is a slog handler that keeps every record, for asserting log lines.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

// rpcLines are the "rpc" log lines of method so far, as attribute maps.
func (h *records) rpcLines(method string) []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.recs {
		if r.Message != "rpc" {
			continue
		}
		m := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.String()
			return true
		})
		if m["method"] == method {
			out = append(out, m)
		}
	}
	return out
}

// tokens verifies the bearer token "user:<sub>" as an end user and
// "service:<sub>" as a cart:any service.
type tokens struct{}

func (tokens) Verify(_ context.Context, tok string) (auth.Principal, error) {
	kind, sub, _ := strings.Cut(tok, ":")
	switch kind {
	case "user":
		return auth.Principal{Subject: sub}, nil
	case "service":
		return auth.Principal{Subject: sub, Scopes: []string{auth.ScopeAny}}, nil
	}
	return auth.Principal{}, errors.New("bad token")
}

// seen is what the handler saw of one call.
type seen struct {
	correlationID string
	span          trace.SpanContext
}

// queries answers GetCart and records what it saw.
type queries struct {
	cartv1.UnimplementedCartQueryServiceServer
	got chan seen
}

func (q *queries) GetCart(ctx context.Context, req *cartv1.GetCartRequest) (*cartv1.GetCartResponse, error) {
	q.got <- seen{correlationID: rpc.CorrelationID(ctx), span: trace.SpanContextFromContext(ctx)}
	if req.GetUserId() == "boom" {
		return nil, status.Error(codes.FailedPrecondition, "refused")
	}
	return &cartv1.GetCartResponse{}, nil
}

type server struct {
	conn *grpc.ClientConn
	logs *records
	rec  *tracetest.SpanRecorder
	q    *queries
}

func startServer(t *testing.T) *server {
	t.Helper()
	s := &server{logs: &records{}, rec: tracetest.NewSpanRecorder(), q: &queries{got: make(chan seen, 1)}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.rec))
	log := slog.New(s.logs)
	srv, _ := rpc.NewServer(log, rpc.Security{Auth: auth.New(tokens{}, log)}, tracing.ServerOptions(tp)...)
	cartv1.RegisterCartQueryServiceServer(srv, s.q)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	if s.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.conn.Close() })
	return s
}

func callCtx(t *testing.T, kv ...string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// TestCorrelationID checks that a call's correlation ID, the caller's when
// valid and a generated one otherwise, is the one the handler stores, the
// one logged and the one returned in the response header, on success,
// on a handler's error and on a call authentication refused.
func TestCorrelationID(t *testing.T) {
	s := startServer(t)
	client := cartv1.NewCartQueryServiceClient(s.conn)
	const method = "/cart.v1.CartQueryService/GetCart"
	for _, tc := range []struct {
		name      string
		given     *string // nil: no header
		user      string
		token     string
		code      codes.Code
		keep      bool // the given ID is kept
		rejectLen int  // logged length of a replaced ID
	}{
		{name: "given", given: ptr("req-42/a.b_c"), token: "user:alice", code: codes.OK, keep: true},
		{name: "longest kept", given: ptr(strings.Repeat("x", rpc.MaxCorrelationIDLength)), token: "user:alice", code: codes.OK, keep: true},
		{name: "absent", token: "user:alice", code: codes.OK},
		{name: "too long", given: ptr(strings.Repeat("x", rpc.MaxCorrelationIDLength+1)), token: "user:alice", code: codes.OK, rejectLen: rpc.MaxCorrelationIDLength + 1},
		{name: "space", given: ptr("a b"), token: "user:alice", code: codes.OK, rejectLen: 3},
		{name: "handler error", given: ptr("req-err"), user: "boom", token: "service:svc", code: codes.FailedPrecondition, keep: true},
		{name: "unauthenticated", given: ptr("req-anon"), code: codes.Unauthenticated, keep: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var kv []string
			if tc.given != nil {
				kv = append(kv, rpc.HeaderCorrelationID, *tc.given)
			}
			if tc.token != "" {
				kv = append(kv, "authorization", "Bearer "+tc.token)
			}
			var header metadata.MD
			_, err := client.GetCart(callCtx(t, kv...), &cartv1.GetCartRequest{UserId: tc.user}, grpc.Header(&header))
			if status.Code(err) != tc.code {
				t.Fatalf("GetCart = %v, want %v", err, tc.code)
			}
			got := header.Get(rpc.HeaderCorrelationID)
			if len(got) != 1 {
				t.Fatalf("response header %s = %q, want one value", rpc.HeaderCorrelationID, got)
			}
			id := got[0]
			switch {
			case tc.keep && id != *tc.given:
				t.Errorf("returned %q, want the caller's %q", id, *tc.given)
			case !tc.keep:
				if _, err := uuid.Parse(id); err != nil {
					t.Errorf("returned %q, want a generated UUID", id)
				}
			}
			if tc.code != codes.Unauthenticated {
				if h := <-s.q.got; h.correlationID != id {
					t.Errorf("handler saw %q, caller got %q", h.correlationID, id)
				}
			}
			lines := s.logs.rpcLines(method)
			line := lines[len(lines)-1]
			if line["correlation_id"] != id || line["code"] != tc.code.String() {
				t.Errorf("log line %v; want correlation_id %q, code %v", line, id, tc.code)
			}
			if tc.rejectLen > 0 && line["rejected_correlation_id_length"] != itoa(tc.rejectLen) {
				t.Errorf("log line %v; want rejected_correlation_id_length %d", line, tc.rejectLen)
			}
			if tc.rejectLen == 0 && line["rejected_correlation_id_length"] != "" {
				t.Errorf("log line %v reports a rejected ID", line)
			}
		})
	}
}

// TestValidCorrelationID covers what gRPC clients refuse to send, so that
// it is checked here rather than over the wire.
func TestValidCorrelationID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"a", true},
		{"req-42/a.b_c:~!", true},
		{strings.Repeat("x", rpc.MaxCorrelationIDLength), true},
		{"", false},
		{strings.Repeat("x", rpc.MaxCorrelationIDLength+1), false},
		{"a b", false},
		{"a\tb", false},
		{"a\nlevel=ERROR", false},
		{"café", false},
		{"\x7f", false},
	} {
		if got := rpc.ValidCorrelationID(tc.id); got != tc.want {
			t.Errorf("ValidCorrelationID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

// TestStreamCorrelationID checks the response header on a stream (health
// Watch, open to every caller).
func TestStreamCorrelationID(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithCancel(callCtx(t, rpc.HeaderCorrelationID, "watch-1"))
	defer cancel()
	w, err := healthpb.NewHealthClient(s.conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	h, err := w.Header()
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get(rpc.HeaderCorrelationID); len(got) != 1 || got[0] != "watch-1" {
		t.Errorf("stream header %s = %q, want watch-1", rpc.HeaderCorrelationID, got)
	}
}

// TestLogFields checks the fields of the one log line per call: command,
// principal, the cart's user (the end user's own when they left user_id
// out), and the trace and span IDs of the RPC's span, which continues the
// caller's W3C trace context.
func TestLogFields(t *testing.T) {
	s := startServer(t)
	client := cartv1.NewCartQueryServiceClient(s.conn)
	const (
		callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		callerSpan  = "00f067aa0ba902b7"
	)
	for _, tc := range []struct {
		name, token, user, traceparent string
		wantPrincipal, wantUser        string
	}{
		{name: "end user, own cart implied", token: "user:alice", wantPrincipal: "alice", wantUser: "alice"},
		{name: "end user names own cart", token: "user:alice", user: "alice", wantPrincipal: "alice", wantUser: "alice"},
		{name: "service for a user", token: "service:checkout", user: "bob", wantPrincipal: "checkout", wantUser: "bob"},
		{name: "caller's trace continues", token: "user:carol", traceparent: "00-" + callerTrace + "-" + callerSpan + "-01",
			wantPrincipal: "carol", wantUser: "carol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := []string{"authorization", "Bearer " + tc.token}
			if tc.traceparent != "" {
				kv = append(kv, "traceparent", tc.traceparent)
			}
			if _, err := client.GetCart(callCtx(t, kv...), &cartv1.GetCartRequest{UserId: tc.user}); err != nil {
				t.Fatal(err)
			}
			h := <-s.q.got
			if !h.span.IsValid() {
				t.Fatal("the handler's context has no span")
			}
			if tc.traceparent != "" && (h.span.TraceID().String() != callerTrace) {
				t.Errorf("trace ID %s, want the caller's %s", h.span.TraceID(), callerTrace)
			}
			if tc.traceparent != "" {
				var server sdktrace.ReadOnlySpan
				for _, sp := range s.rec.Ended() {
					if sp.SpanContext().SpanID() == h.span.SpanID() {
						server = sp
					}
				}
				if server == nil || server.Parent().SpanID().String() != callerSpan || server.SpanKind() != trace.SpanKindServer {
					t.Errorf("server span %v; want a server span whose parent is the caller's span %s", server, callerSpan)
				}
			}
			lines := s.logs.rpcLines("/cart.v1.CartQueryService/GetCart")
			line := lines[len(lines)-1]
			want := map[string]string{
				"command": "GetCart", "principal": tc.wantPrincipal, "user": tc.wantUser,
				"trace_id": h.span.TraceID().String(), "span_id": h.span.SpanID().String(),
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("log %s = %q, want %q (line %v)", k, line[k], v, line)
				}
			}
		})
	}
}

// TestLogFieldsUntraced checks that without tracing the line has no trace
// fields rather than zero IDs.
func TestLogFieldsUntraced(t *testing.T) {
	logs := &records{}
	log := slog.New(logs)
	srv, _ := rpc.NewServer(log, rpc.Security{Auth: auth.New(tokens{}, log)}, tracing.ServerOptions(nil)...)
	q := &queries{got: make(chan seen, 1)}
	cartv1.RegisterCartQueryServiceServer(srv, q)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := cartv1.NewCartQueryServiceClient(conn).GetCart(callCtx(t, "authorization", "Bearer user:dave",
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), &cartv1.GetCartRequest{}); err != nil {
		t.Fatal(err)
	}
	<-q.got
	lines := logs.rpcLines("/cart.v1.CartQueryService/GetCart")
	line := lines[len(lines)-1]
	if _, ok := line["trace_id"]; ok {
		t.Errorf("untraced log line has trace_id: %v", line)
	}
	if line["principal"] != "dave" || line["user"] != "dave" || line["command"] != "GetCart" {
		t.Errorf("log line %v; want principal and user dave, command GetCart", line)
	}
}

func ptr(s string) *string { return &s }

func itoa(n int) string { return slog.IntValue(n).String() }
