package guard

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Decoder answers INVALID_ARGUMENT, not INTERNAL, to a request whose bytes
// are not a valid message (truncated or malformed wire data, invalid UTF-8 in
// a string field, nesting too deep, ...).
//
// grpc-go (v1.85: serverStream.RecvMsg → recv in rpc_util.go, used by the
// unary path through wrapUnaryHandler's decode func as well as by streams)
// turns any codec error into INTERNAL and writes that status to the wire
// itself, so no interceptor can rewrite it. The Decoder therefore works in
// three parts, all installed by [Decoder.ServerOptions]:
//
//   - a server codec that, when the proto codec fails, empties the message,
//     remembers the error against it and reports success to grpc-go;
//   - unary and stream interceptors that look the message up before the
//     handler (or the handler's RecvMsg call) returns it, and answer
//     INVALID_ARGUMENT; a handler therefore never sees the message;
//   - a stats handler that forgets whatever an RPC left behind when it ends
//     (a unary call whose second message broke the cardinality rule never
//     reaches an interceptor), so nothing is kept after the RPC.
//
// A Decoder is safe for concurrent use; one per server is enough.
type Decoder struct {
	log  *slog.Logger
	base encoding.CodecV2

	// pending counts the entries of failed, so the common case (nothing
	// remembered) takes no lock. The codec, the interceptor and the end of
	// an RPC run on the RPC's goroutine, so the count is never stale there.
	pending atomic.Int64
	mu      sync.Mutex
	failed  map[any]*decodeFailure // keyed by the message grpc-go decoded into
}

// decodeFailure is a pointer so that forgetting compares identity: only the
// record an RPC saw is removed.
type decodeFailure struct{ err error }

// NewDecoder returns a Decoder logging refused requests to log (slog.Default
// when nil) at Info: a request that cannot be decoded is the caller's fault,
// not an error of the service.
func NewDecoder(log *slog.Logger) *Decoder {
	if log == nil {
		log = slog.Default()
	}
	// Importing grpcproto registers grpc-go's proto codec (or whichever
	// codec the program registered under that name later), so base is
	// never nil.
	base := encoding.GetCodecV2(grpcproto.Name)
	return &Decoder{log: log, base: base, failed: make(map[any]*decodeFailure)}
}

// ServerOptions returns everything the Decoder needs on one grpc.Server: the
// codec (set per server, not registered globally, so clients and other
// servers in the process keep grpc-go's codec), the stats handler, and the
// unary and stream interceptors.
//
// Pass these options to grpc.NewServer before any other
// grpc.ChainUnaryInterceptor or grpc.ChainStreamInterceptor option, so the
// decode check is the outermost interceptor and no other interceptor
// (logging, authentication, rate limiting) handles a refused request; do not
// use grpc.UnaryInterceptor or grpc.StreamInterceptor, which grpc-go always
// runs first. Other grpc.StatsHandler options (OpenTelemetry) may be added.
//
// The codec decodes every content-subtype as protobuf, as the cart services
// only speak protobuf.
func (d *Decoder) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(serverCodec{d: d}),
		grpc.StatsHandler(sweeper{d: d}),
		grpc.ChainUnaryInterceptor(d.unary),
		grpc.ChainStreamInterceptor(d.stream),
	}
}

// Pending reports how many decode failures are remembered right now; it is
// zero whenever no RPC is in flight, which the tests and a metric can check.
func (d *Decoder) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.failed)
}

func (d *Decoder) remember(msg any, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.failed[msg]; !ok { // the first failure explains the RPC
		d.failed[msg] = &decodeFailure{err: err}
		d.pending.Add(1)
	}
}

// take returns and forgets the failure remembered for msg, or nil.
func (d *Decoder) take(msg any) error {
	if d.pending.Load() == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, ok := d.failed[msg]
	if !ok {
		return nil
	}
	delete(d.failed, msg)
	d.pending.Add(-1)
	return f.err
}

func (d *Decoder) has(msg any) bool {
	if d.pending.Load() == 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.failed[msg]
	return ok
}

// refuse logs the failure as the caller's and builds the status. The proto
// error names the field and the kind of damage, never the bytes.
func (d *Decoder) refuse(ctx context.Context, method string, err error) error {
	d.log.LogAttrs(ctx, slog.LevelInfo, "request refused: cannot be decoded",
		slog.String("method", method), slog.String("error", err.Error()))
	return status.Error(codes.InvalidArgument, "request cannot be decoded: "+err.Error())
}

func (d *Decoder) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := d.take(req); err != nil {
		return nil, d.refuse(ctx, info.FullMethod, err)
	}
	return handler(ctx, req)
}

func (d *Decoder) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &decodeStream{ServerStream: ss, d: d, method: info.FullMethod})
}

// decodeStream checks every received message. grpc-go allows one goroutine
// at a time in RecvMsg, so refused needs no lock.
type decodeStream struct {
	grpc.ServerStream
	d       *Decoder
	method  string
	refused error
}

func (s *decodeStream) RecvMsg(m any) error {
	if s.refused != nil {
		// A handler that ignores the error must not read past the damage.
		return s.refused
	}
	err := s.ServerStream.RecvMsg(m)
	derr := s.d.take(m) // always: the record must not outlive this call
	if err != nil {
		// grpc-go already wrote its own status for this error.
		return err
	}
	if derr != nil {
		s.refused = s.d.refuse(s.Context(), s.method, derr)
		return s.refused
	}
	return nil
}

// serverCodec is grpc-go's proto codec, except that a message it cannot
// decode is emptied and remembered instead of failing the RPC as INTERNAL.
type serverCodec struct{ d *Decoder }

func (c serverCodec) Name() string { return c.d.base.Name() }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) { return c.d.base.Marshal(v) }

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		// The server asked for something that is not a message: a bug of
		// ours, which INTERNAL describes correctly.
		return c.d.base.Unmarshal(data, v)
	}
	if err := c.d.base.Unmarshal(data, v); err != nil {
		proto.Reset(m) // never hand on a half-decoded message
		c.d.remember(v, err)
	}
	return nil
}

// sweeper is a stats handler that forgets, when an RPC ends, any failure
// remembered for a message the RPC received. grpc-go reports every message
// the codec accepted with an InPayload event on the RPC's context.
type sweeper struct{ d *Decoder }

type rpcKey struct{}

// rpcMessages collects, per RPC, the messages whose failures may still be
// remembered at its end. Events of one RPC come from the handler's goroutine
// and grpc-go's, hence the lock.
type rpcMessages struct {
	mu            sync.Mutex
	clientStreams bool
	msgs          []any
}

func (s sweeper) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, rpcKey{}, &rpcMessages{})
}

func (s sweeper) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	if rs.IsClient() {
		return
	}
	r, _ := ctx.Value(rpcKey{}).(*rpcMessages)
	if r == nil {
		return
	}
	switch ev := rs.(type) {
	case *stats.Begin:
		r.mu.Lock()
		r.clientStreams = ev.IsClientStream
		r.mu.Unlock()
	case *stats.InPayload:
		r.mu.Lock()
		defer r.mu.Unlock()
		// Without client streaming grpc-go decodes once more into the same
		// message to check that no second one follows, and that failure may
		// never reach an interceptor: keep the one message. With client
		// streaming each RecvMsg decodes once and the stream interceptor
		// takes the record; keep only what is still remembered (at most
		// one, as decodeStream stops reading after a failure).
		if !r.clientStreams || s.d.has(ev.Payload) {
			r.msgs = append(r.msgs, ev.Payload)
		}
	case *stats.End:
		r.mu.Lock()
		msgs := r.msgs
		r.msgs = nil
		r.mu.Unlock()
		for _, m := range msgs {
			s.d.take(m)
		}
	}
}

func (sweeper) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (sweeper) HandleConn(context.Context, stats.ConnStats) {}
