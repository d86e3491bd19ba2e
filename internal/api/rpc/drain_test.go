package rpc

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/cart/internal/auth"
)

// testServer serves NewServer's server (with opts) on a loopback port and
// returns it with a client connection to it.
func testServer(t *testing.T, opts ...grpc.ServerOption) (*grpc.Server, *health.Server, net.Listener, *grpc.ClientConn) {
	t.Helper()
	srv, hs := NewServer(slog.New(slog.DiscardHandler), Security{Auth: auth.NewInsecure(slog.New(slog.DiscardHandler))}, opts...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return srv, hs, lis, conn
}

// eventually polls cond every millisecond for at most 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHealthMonitorGroupsDependOnlyOnTheirChecks(t *testing.T) {
	t.Parallel()
	hs := health.NewServer()
	var storeDown atomic.Bool
	var sharedCalls, rounds atomic.Int64
	shared := HealthCheck{Name: "shared", Check: func(context.Context) error { sharedCalls.Add(1); return nil }}
	store := HealthCheck{Name: "store", Check: func(context.Context) error {
		if storeDown.Load() {
			return errors.New("store down")
		}
		return nil
	}}
	var mu sync.Mutex
	var reports []bool
	m := HealthMonitor{Interval: time.Millisecond, Groups: []HealthGroup{
		{Server: hs, Names: []string{"", "svc/Main"}, Checks: []HealthCheck{shared}},
		{Server: hs, Names: []string{"svc/History"}, Checks: []HealthCheck{shared, store}},
	}, Report: func(serving, changed bool) {
		rounds.Add(1)
		if changed {
			mu.Lock()
			reports = append(reports, serving)
			mu.Unlock()
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()

	status := func(name string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: name})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return resp.GetStatus()
	}
	want := func(main, history healthpb.HealthCheckResponse_ServingStatus) func() bool {
		return func() bool {
			return status("") == main && status("svc/Main") == main && status("svc/History") == history
		}
	}
	eventually(t, "all serving", want(healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_SERVING))
	storeDown.Store(true)
	eventually(t, "history down, the rest serving", want(healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING))
	storeDown.Store(false)
	eventually(t, "all serving again", want(healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_SERVING))
	cancel()
	<-done

	// The round cut short by cancel ran its checks but reported nothing.
	if s, r := sharedCalls.Load(), rounds.Load(); s != r && s != r+1 {
		t.Errorf("the shared check ran %d times in %d rounds, want once a round", s, r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 3 || !reports[0] || reports[1] || !reports[2] {
		t.Errorf("reported changes = %v, want [true false true]", reports)
	}
}

// TestLifecycleDrainsBeforeStopping: after the stop is requested every
// health name is NOT_SERVING while calls are still answered, and only
// after the drain does the server stop.
func TestLifecycleDrainsBeforeStopping(t *testing.T) {
	t.Parallel()
	srv, hs, lis, conn := testServer(t)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Lifecycle{ShutdownTimeout: time.Second, Drain: 2 * time.Second,
			Endpoints: []Endpoint{{Name: "test", Server: srv, Health: hs, Listener: lis}}}.Run(ctx)
	}()
	client := healthpb.NewHealthClient(conn)
	check := func(name string) (healthpb.HealthCheckResponse_ServingStatus, error) {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		resp, err := client.Check(cctx, &healthpb.HealthCheckRequest{Service: name})
		return resp.GetStatus(), err
	}
	eventually(t, "serving", func() bool { st, err := check("svc"); return err == nil && st == healthpb.HealthCheckResponse_SERVING })

	cancel()
	// Each Check below is a call answered during the drain.
	eventually(t, "NOT_SERVING during the drain", func() bool {
		st, err := check("")
		if err != nil {
			t.Fatalf("health call during the drain: %v", err)
		}
		return st == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if st, err := check("svc"); err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("svc during the drain = %v, %v; want NOT_SERVING, answered", st, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned during the drain: %v", err)
	default:
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := check(""); err == nil {
		t.Error("a call succeeded after the stop")
	}
}

// TestMaxConnectionAgeClosesConnections: an aged connection is closed by
// the server, so the client connects again (to whichever replica).
func TestMaxConnectionAgeClosesConnections(t *testing.T) {
	t.Parallel()
	cfg := ServerConfig{MaxConnectionAge: 50 * time.Millisecond, MaxConnectionAgeGrace: time.Second}
	srv, _, lis, conn := testServer(t, cfg.ServerOptions()...)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	for st := conn.GetState(); st == connectivity.Ready; st = conn.GetState() {
		if !conn.WaitForStateChange(ctx, st) {
			t.Fatal("the connection is still open long after its maximum age")
		}
	}
}

func TestServerConfigValidatesDrainAndAge(t *testing.T) {
	t.Parallel()
	cfg := ServerConfig{Listen: "127.0.0.1:1", HealthInterval: time.Second, Security: SecurityConfig{InsecureNoAuth: true},
		Drain: -1, MaxConnectionAge: -1, MaxConnectionAgeGrace: -1}
	errs := cfg.Validate()
	if len(errs) != 3 {
		t.Fatalf("Validate = %v, want drain, max-connection-age and max-connection-age-grace refused", errs)
	}
}

// TestLifecycleCompanionsOutliveTheStop: background tasks end when the stop
// begins, companions (the metrics listener) only after the servers
// stopped, so that the drain can still be scraped.
func TestLifecycleCompanionsOutliveTheStop(t *testing.T) {
	t.Parallel()
	srv, hs, lis, _ := testServer(t)
	var stopping atomic.Bool
	bgEnded, compEnded := make(chan bool, 1), make(chan bool, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Lifecycle{
			Drain:      50 * time.Millisecond,
			Endpoints:  []Endpoint{{Name: "test", Server: srv, Health: hs, Listener: lis}},
			Background: []func(context.Context){func(ctx context.Context) { <-ctx.Done(); bgEnded <- stopping.Load() }},
			Companions: []func(context.Context){func(ctx context.Context) { <-ctx.Done(); compEnded <- stopping.Load() }},
			Stopping:   func() { stopping.Store(true) },
		}.Run(ctx)
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if afterStopping := <-bgEnded; afterStopping {
		t.Error("a background task outlived the drain")
	}
	if afterStopping := <-compEnded; !afterStopping {
		t.Error("a companion ended before the servers stopped")
	}
}
