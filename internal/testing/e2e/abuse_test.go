package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/acme/cart/internal/api/guard"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// TestRateLimitPerPrincipal: command-svc lets a principal send a burst and
// then refuses with RESOURCE_EXHAUSTED and a RetryInfo delay, while another
// principal is unaffected.
func TestRateLimitPerPrincipal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	// One command per minute sustained: the burst is all a quick test sees.
	e := newEnv(t, withRateLimit(guard.RateLimit{PerSecond: 1.0 / 60, Burst: 2}))
	e.show("sku-1", eur(1, 0))
	add := func(user string) error {
		_, err := e.cmd.AddItem(e.as(user), &cartv1.AddItemRequest{ProductId: "sku-1", Quantity: 1})
		return err
	}
	for i := range 2 {
		if err := add("eve"); err != nil {
			t.Fatalf("command %d of the burst: %v", i+1, err)
		}
	}
	err := add("eve")
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("third command = %v; want RESOURCE_EXHAUSTED", err)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay <= 0 {
		t.Fatalf("RESOURCE_EXHAUSTED without a positive RetryInfo delay: %v", st.Details())
	}
	if err := add("frank"); err != nil {
		t.Fatalf("another principal was limited too: %v", err)
	}
	if h := e.history("eve"); len(h) != 2 {
		t.Fatalf("eve's history has %d events; want the 2 of the burst", len(h))
	}
}

// rawCodec sends and receives bytes as they are, so that a test can put
// any wire data on the line.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// undecodable are request bodies no server may take for a request of in:
// truncated wire data after a valid user_id, and (when the message has a
// string field) that field holding invalid UTF-8.
func undecodable(in protoreflect.MessageDescriptor) map[string][]byte {
	valid := protowire.AppendTag(nil, 1, protowire.BytesType)
	valid = protowire.AppendString(valid, "victim")
	truncated := append(append([]byte{}, valid...), 0x12, 0x05, 'a') // field 2 says 5 bytes, holds 1
	out := map[string][]byte{"truncated": truncated, "truncated varint": {0x08, 0xff}}
	fields := in.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Kind() == protoreflect.StringKind && f.Cardinality() != protoreflect.Repeated {
			b := protowire.AppendTag(nil, f.Number(), protowire.BytesType)
			out["invalid UTF-8 in "+string(f.Name())] = protowire.AppendBytes(b, []byte("victim\xff\xfe"))
			break
		}
	}
	return out
}

// TestUndecodableRequestsAreInvalidArgument: on every RPC of all three
// services, running, a request that cannot be decoded is INVALID_ARGUMENT
// (the caller's fault), not INTERNAL, and writes nothing.
func TestUndecodableRequestsAreInvalidArgument(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	e := newEnv(t)
	token := e.token(serviceSubject, "cart:any", "cart:admin")
	services := []struct {
		file protoreflect.FileDescriptor
		desc grpc.ServiceDesc
		addr string
	}{
		{cartv1.File_cart_v1_command_service_proto, cartv1.CartCommandService_ServiceDesc, e.cmdAddr},
		{cartv1.File_cart_v1_query_service_proto, cartv1.CartQueryService_ServiceDesc, e.queryAddr},
		{cartv1.File_cart_v1_admin_service_proto, cartv1.CartAdminService_ServiceDesc, e.adminAddr},
	}
	for _, svc := range services {
		conn := dial(t, svc.addr, grpc.WithPerRPCCredentials(bearer(token)))
		sd := svc.file.Services().ByName(protoreflect.FullName(svc.desc.ServiceName).Name())
		if sd == nil {
			t.Fatalf("no descriptor of %s", svc.desc.ServiceName)
		}
		methods := sd.Methods()
		if methods.Len() != len(methodsOf(svc.desc)) {
			t.Fatalf("%s: %d methods in the descriptor, %d served", svc.desc.ServiceName, methods.Len(), len(methodsOf(svc.desc)))
		}
		for i := range methods.Len() {
			m := methods.Get(i)
			full := "/" + svc.desc.ServiceName + "/" + string(m.Name())
			for name, body := range undecodable(m.Input()) {
				var err error
				if m.IsStreamingServer() {
					var stream grpc.ClientStream
					stream, err = conn.NewStream(ctx(t), &grpc.StreamDesc{ServerStreams: true}, full, grpc.ForceCodec(rawCodec{}))
					if err == nil {
						if err = stream.SendMsg(&body); err == nil {
							_ = stream.CloseSend()
							var out []byte
							err = stream.RecvMsg(&out)
						}
					}
				} else {
					var out []byte
					err = conn.Invoke(ctx(t), full, &body, &out, grpc.ForceCodec(rawCodec{}))
				}
				if status.Code(err) != codes.InvalidArgument {
					t.Errorf("%s with %s: %v; want INVALID_ARGUMENT", full, name, err)
				}
			}
		}
	}
	if h := e.history("victim"); len(h) != 0 {
		t.Fatalf("undecodable requests wrote %v", h)
	}
}
