package guard_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/acme/cart/internal/api/guard"
	"github.com/acme/cart/internal/testing/logtest"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// rawMsg is a request or reply as bytes; rawCodec sends and receives it
// untouched, so the tests can put damaged bytes on the wire.
type rawMsg struct{ b []byte }

type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawMsg).b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*rawMsg).b = data.Materialize()
	return nil
}

type testServer struct {
	dec  *guard.Decoder
	srv  *grpc.Server
	conn *grpc.ClientConn
	logs *logtest.Buffer
}

// startServer runs a real grpc.Server with the Decoder's options on an
// in-memory listener; register adds the services.
func startServer(t *testing.T, register func(*grpc.Server)) *testServer {
	t.Helper()
	logs := &logtest.Buffer{}
	dec := guard.NewDecoder(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	srv := grpc.NewServer(dec.ServerOptions()...)
	register(srv)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ts := &testServer{dec: dec, srv: srv, conn: conn, logs: logs}
	t.Cleanup(ts.stop)
	return ts
}

// stop waits for every RPC to finish on the server, after which no decode
// failure may be remembered.
func (ts *testServer) stop() {
	_ = ts.conn.Close()
	ts.srv.GracefulStop()
}

func registerCart(s *grpc.Server) {
	cartv1.RegisterCartCommandServiceServer(s, cartv1.UnimplementedCartCommandServiceServer{})
	cartv1.RegisterCartQueryServiceServer(s, cartv1.UnimplementedCartQueryServiceServer{})
	cartv1.RegisterCartAdminServiceServer(s, cartv1.UnimplementedCartAdminServiceServer{})
}

// call sends body to method as one request, unary or streaming, and returns
// the status the server answered with.
func call(ctx context.Context, conn *grpc.ClientConn, method string, stream bool, bodies ...[]byte) error {
	opt := grpc.ForceCodecV2(rawCodec{})
	if !stream && len(bodies) == 1 {
		return conn.Invoke(ctx, method, &rawMsg{b: bodies[0]}, &rawMsg{}, opt)
	}
	// The client claims both directions stream, so it lets the test send
	// more than the server's descriptor allows and reads until the end.
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method, opt)
	if err != nil {
		return err
	}
	for _, b := range bodies {
		if err := cs.SendMsg(&rawMsg{b: b}); err != nil {
			break // the status comes from RecvMsg
		}
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	for {
		if err := cs.RecvMsg(&rawMsg{}); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// stringField returns a singular string field of the message, whose value
// proto3 requires to be valid UTF-8; some requests (the admin streams') have
// no fields at all.
func stringField(md protoreflect.MessageDescriptor) (protoreflect.FieldNumber, bool) {
	fields := md.Fields()
	for i := range fields.Len() {
		if f := fields.Get(i); f.Kind() == protoreflect.StringKind && !f.IsList() && !f.IsMap() {
			return f.Number(), true
		}
	}
	return 0, false
}

type rpc struct {
	method string
	stream bool
	input  protoreflect.MessageDescriptor
}

// cartRPCs lists every method and stream of the three services with its
// request type, from the descriptors, so a new method is covered unasked.
func cartRPCs(t *testing.T) []rpc {
	t.Helper()
	var rpcs []rpc
	for _, sd := range []*grpc.ServiceDesc{
		&cartv1.CartCommandService_ServiceDesc,
		&cartv1.CartQueryService_ServiceDesc,
		&cartv1.CartAdminService_ServiceDesc,
	} {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(sd.ServiceName))
		if err != nil {
			t.Fatalf("descriptor of %s: %v", sd.ServiceName, err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		input := func(name string) protoreflect.MessageDescriptor {
			m := methods.ByName(protoreflect.Name(name))
			if m == nil {
				t.Fatalf("%s has no method %s", sd.ServiceName, name)
			}
			return m.Input()
		}
		for _, m := range sd.Methods {
			rpcs = append(rpcs, rpc{"/" + sd.ServiceName + "/" + m.MethodName, false, input(m.MethodName)})
		}
		for _, s := range sd.Streams {
			rpcs = append(rpcs, rpc{"/" + sd.ServiceName + "/" + s.StreamName, true, input(s.StreamName)})
		}
	}
	if len(rpcs) < 10 {
		t.Fatalf("found only %d RPCs in the cart services", len(rpcs))
	}
	return rpcs
}

func TestDecoderRefusesUndecodableRequestsOnEveryRPC(t *testing.T) {
	bodies := []struct {
		name        string
		needsString bool // the damage is only damage in a string field
		body        func(field protoreflect.FieldNumber) []byte
		want        codes.Code
	}{
		{"invalid UTF-8 in a string field", true, func(f protoreflect.FieldNumber) []byte {
			b := protowire.AppendTag(nil, f, protowire.BytesType)
			return protowire.AppendBytes(b, []byte{'u', 0xff, 0xfe, '1'})
		}, codes.InvalidArgument},
		{"length beyond the end", false, func(f protoreflect.FieldNumber) []byte {
			b := protowire.AppendTag(nil, f, protowire.BytesType)
			b = protowire.AppendVarint(b, 10)
			return append(b, "u1"...)
		}, codes.InvalidArgument},
		{"truncated varint tag", false, func(protoreflect.FieldNumber) []byte {
			return []byte{0x80}
		}, codes.InvalidArgument},
		{"field number zero", false, func(protoreflect.FieldNumber) []byte {
			return protowire.AppendVarint(nil, uint64(protowire.EncodeTag(0, protowire.VarintType)))
		}, codes.InvalidArgument},
		{"valid string reaches the handler", false, func(f protoreflect.FieldNumber) []byte {
			b := protowire.AppendTag(nil, f, protowire.BytesType)
			return protowire.AppendString(b, "user-1")
		}, codes.Unimplemented},
		{"empty request reaches the handler", false, func(protoreflect.FieldNumber) []byte {
			return nil
		}, codes.Unimplemented},
	}
	for _, r := range cartRPCs(t) {
		field, hasString := stringField(r.input)
		if !hasString {
			// Field 1 is then unknown, which proto3 keeps without checks.
			field = 1
			t.Logf("%s has no string field: no UTF-8 case for %s", r.input.FullName(), r.method)
		}
		for _, tc := range bodies {
			if tc.needsString && !hasString {
				continue
			}
			t.Run(strings.TrimPrefix(r.method, "/")+"/"+tc.name, func(t *testing.T) {
				ts := startServer(t, registerCart)

				err := call(t.Context(), ts.conn, r.method, r.stream, tc.body(field))

				st := status.Convert(err)
				if st.Code() != tc.want {
					t.Fatalf("status = %v %q, want %v", st.Code(), st.Message(), tc.want)
				}
				if tc.want == codes.InvalidArgument && !strings.HasPrefix(st.Message(), "request cannot be decoded: ") {
					t.Errorf("message = %q, want it to start with %q", st.Message(), "request cannot be decoded: ")
				}
				ts.stop()
				if n := ts.dec.Pending(); n != 0 {
					t.Errorf("%d decode failures still remembered after the RPC", n)
				}
			})
		}
	}
}

func TestDecoderLogsRefusalAsTheCallersFault(t *testing.T) {
	ts := startServer(t, registerCart)
	bad := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff, 0x00, 0xc3})

	err := call(t.Context(), ts.conn, cartv1.CartCommandService_AddItem_FullMethodName, false, bad)

	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("status = %v, want InvalidArgument", err)
	}
	ts.stop()
	logs := ts.logs.String()
	if !strings.Contains(logs, "level=INFO") || !strings.Contains(logs, "cannot be decoded") {
		t.Errorf("no Info line about the refusal in %q", logs)
	}
	if strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "level=WARN") {
		t.Errorf("refusal logged as the server's fault: %q", logs)
	}
	if strings.Contains(logs, "\xff") || strings.Contains(status.Convert(err).Message(), "\xff") {
		t.Errorf("raw request bytes echoed")
	}
}

// A unary call whose first message is damaged and that sends a second one
// fails in grpc-go before any interceptor runs; the stats handler must still
// forget the failure.
func TestDecoderForgetsFailuresOfRPCsThatNeverReachAnInterceptor(t *testing.T) {
	bad := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff})
	good := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "user-1")
	tests := []struct {
		name   string
		method string
		stream bool
		bodies [][]byte
	}{
		{"unary, damaged then valid", cartv1.CartCommandService_AddItem_FullMethodName, false, [][]byte{bad, good}},
		{"unary, damaged twice", cartv1.CartQueryService_GetCart_FullMethodName, false, [][]byte{bad, bad}},
		{"server stream, damaged then valid", cartv1.CartAdminService_RebuildReadModel_FullMethodName, true, [][]byte{bad, good}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, registerCart)

			err := call(t.Context(), ts.conn, tc.method, tc.stream, tc.bodies...)

			if code := status.Code(err); code == codes.OK || code == codes.Unimplemented {
				t.Fatalf("status = %v, want the call refused", err)
			}
			ts.stop()
			if n := ts.dec.Pending(); n != 0 {
				t.Errorf("%d decode failures still remembered after the RPC", n)
			}
		})
	}
}

// collect is a client-streaming handler that counts valid messages and,
// like a careless handler, keeps reading after an error once.
func collect(_ any, ss grpc.ServerStream) error {
	n := 0
	for {
		err := ss.RecvMsg(new(wrapperspb.StringValue))
		if errors.Is(err, io.EOF) {
			return ss.SendMsg(wrapperspb.Int32(int32(n)))
		}
		if err != nil {
			again := ss.RecvMsg(new(wrapperspb.StringValue))
			if status.Code(again) != status.Code(err) {
				return status.Errorf(codes.DataLoss, "second RecvMsg after a refusal: %v", again)
			}
			return err
		}
		n++
	}
}

var collectDesc = grpc.ServiceDesc{
	ServiceName: "guardtest.Collector",
	Streams:     []grpc.StreamDesc{{StreamName: "Collect", Handler: collect, ClientStreams: true}},
}

func TestDecoderRefusesADamagedMessageInAClientStream(t *testing.T) {
	good := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "ok")
	bad := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xc3, 0x28})
	tests := []struct {
		name   string
		bodies [][]byte
		want   codes.Code
	}{
		{"all valid", [][]byte{good, good, good}, codes.OK},
		{"damaged third", [][]byte{good, good, bad, good}, codes.InvalidArgument},
		{"damaged first", [][]byte{bad}, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, func(s *grpc.Server) { s.RegisterService(&collectDesc, nil) })

			err := call(t.Context(), ts.conn, "/guardtest.Collector/Collect", false, tc.bodies...)

			if got := status.Code(err); got != tc.want {
				t.Fatalf("status = %v, want %v", err, tc.want)
			}
			ts.stop()
			if n := ts.dec.Pending(); n != 0 {
				t.Errorf("%d decode failures still remembered after the RPC", n)
			}
		})
	}
}

func TestDecoderConcurrentCalls(t *testing.T) {
	ts := startServer(t, registerCart)
	bad := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff})
	good := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "user-1")

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			body, want := good, codes.Unimplemented
			if i%2 == 0 {
				body, want = bad, codes.InvalidArgument
			}
			err := call(t.Context(), ts.conn, cartv1.CartCommandService_ClearCart_FullMethodName, false, body)
			if status.Code(err) != want {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected status: %v", err)
	}
	ts.stop()
	if n := ts.dec.Pending(); n != 0 {
		t.Errorf("%d decode failures still remembered", n)
	}
}
