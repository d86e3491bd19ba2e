package rpc

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/acme/cart/internal/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// TestLongLivedStreamSurvivesClientPings: mobile SDKs and the services'
// own clients ping every 10 s, idle or not. A default grpc-go server calls
// that abuse after about 30 s and closes the connection with every stream
// on it; NewServer's policy must not.
func TestLongLivedStreamSurvivesClientPings(t *testing.T) {
	if testing.Short() {
		t.Skip("idles for 35 s to let the client ping several times")
	}
	t.Parallel()
	srv, hs := NewServer(slog.New(slog.DiscardHandler), Security{Auth: auth.NewInsecure(slog.New(slog.DiscardHandler)), Reflection: true})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := watch.Recv(); err != nil || first.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("first status = %v, %v", first, err)
	}

	time.Sleep(35 * time.Second) // the client pings at 10, 20 and 30 s

	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	next, err := watch.Recv()
	if err != nil {
		t.Fatalf("stream broken while idle: %v", err)
	}
	if next.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status = %v, want SERVING", next.GetStatus())
	}
}
