package guard_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/acme/cart/internal/api/guard"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// principalFromMetadata stands in for the authentication package.
func principalFromMetadata(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-test-principal"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// TestGuardWiredIntoAServer wires both guards the way the services will and
// checks what a client sees: the limit on commands only, per principal.
func TestGuardWiredIntoAServer(t *testing.T) {
	dec := guard.NewDecoder(nil)
	lim, err := guard.NewLimiter(guard.RateLimit{PerSecond: 0.001, Burst: 2, ErrorDomain: "cart.acme.com"},
		principalFromMetadata, guard.InService(cartv1.CartCommandService_ServiceDesc.ServiceName), nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(dec.ServerOptions(),
		grpc.ChainUnaryInterceptor(lim.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(lim.StreamInterceptor()))
	srv := grpc.NewServer(opts...)
	registerCart(srv)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	commands := cartv1.NewCartCommandServiceClient(conn)
	queries := cartv1.NewCartQueryServiceClient(conn)
	as := func(p string) context.Context {
		return metadata.AppendToOutgoingContext(t.Context(), "x-test-principal", p)
	}

	steps := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"alice 1", func() error { _, err := commands.ClearCart(as("alice"), &cartv1.ClearCartRequest{}); return err }, codes.Unimplemented},
		{"alice 2", func() error { _, err := commands.ClearCart(as("alice"), &cartv1.ClearCartRequest{}); return err }, codes.Unimplemented},
		{"alice 3 over the burst", func() error { _, err := commands.ClearCart(as("alice"), &cartv1.ClearCartRequest{}); return err }, codes.ResourceExhausted},
		{"alice queries", func() error { _, err := queries.GetCart(as("alice"), &cartv1.GetCartRequest{}); return err }, codes.Unimplemented},
		{"bob", func() error { _, err := commands.ClearCart(as("bob"), &cartv1.ClearCartRequest{}); return err }, codes.Unimplemented},
	}
	for _, s := range steps {
		err := s.call()
		st := status.Convert(err)
		if st.Code() != s.want {
			t.Fatalf("%s: %v, want %v", s.name, err, s.want)
		}
		if s.want != codes.ResourceExhausted {
			continue
		}
		var delay bool
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
				delay = true
			}
		}
		if !delay {
			t.Errorf("%s: no RetryInfo with a positive delay in %v", s.name, st.Details())
		}
	}
}
