package commandsvc_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/catalog"
	"github.com/acme/cart/internal/commandsvc"
	"github.com/acme/cart/internal/dev/standin"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

func TestConfigValidateReportsEverything(t *testing.T) {
	t.Parallel()
	err := commandsvc.Config{
		ServerConfig: rpc.ServerConfig{Listen: "nope", ShutdownTimeout: -time.Second, HealthInterval: -time.Second},
		ESDBURL:      "http://admin:s3cret@host:2113",
	}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad configuration")
	}
	for _, want := range []string{"listen", "esdb", "shutdown-timeout", "health-interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error does not mention %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Validate error shows the password: %v", err)
	}
	for _, want := range []string{"auth-jwks", "catalog"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error does not say that %s is required: %v", want, err)
		}
	}
	// The defaults validate once the two things with no safe default are
	// given: who may call, and where prices come from.
	if err := (commandsvc.Config{ServerConfig: rpc.ServerConfig{Security: rpc.SecurityConfig{InsecureNoAuth: true}},
		CatalogFile: "catalog.json"}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigLogValueMasksThePassword(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	log := slog.New(slog.NewTextHandler(&b, nil))
	log.Info("config", "config", commandsvc.Config{ESDBURL: "esdb://admin:s3cret@host:2113?tls=true"}.WithDefaults())
	if strings.Contains(b.String(), "s3cret") || !strings.Contains(b.String(), "admin:xxxxx@host:2113") {
		t.Fatalf("logged %q; want the URL with its password masked", b.String())
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	if err := commandsvc.Run(context.Background(), commandsvc.Config{ServerConfig: rpc.ServerConfig{Listen: "nope"}}, nil); err == nil {
		t.Fatal("Run started with an invalid listen address")
	}
}

// service runs command-svc in-process against esdbURL and returns its client
// connection and a stop function that cancels Run and waits for it.
func service(t *testing.T, esdbURL string) (*grpc.ClientConn, func() error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- commandsvc.Run(ctx, commandsvc.Config{
			ServerConfig: rpc.ServerConfig{Listener: lis, HealthInterval: 20 * time.Millisecond, Security: rpc.SecurityConfig{InsecureNoAuth: true}},
			ESDBURL:      esdbURL, Catalog: priceOfA(t)}, nil)
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return within 20 s of cancellation")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, stop
}

// waitHealth waits up to 20 s for the service's health to become want.
func waitHealth(t *testing.T, conn *grpc.ClientConn, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: cartv1.CartCommandService_ServiceDesc.ServiceName})
		cancel()
		if err == nil && res.GetStatus() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health did not become %s in 20 s: %v, %v", want, res.GetStatus(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func addItem(t *testing.T, conn *grpc.ClientConn) (*cartv1.AddItemResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return cartv1.NewCartCommandServiceClient(conn).AddItem(ctx, &cartv1.AddItemRequest{
		UserId: "u", ProductId: "a", Quantity: 1, UnitPrice: &cartv1.Money{CurrencyCode: "EUR", Units: 1},
	})
}

func TestRunServesFollowsTheStoreAndStops(t *testing.T) {
	t.Parallel()
	esdb := standin.Start(t)
	conn, stop := service(t, esdb.ConnectionString())

	waitHealth(t, conn, healthpb.HealthCheckResponse_SERVING)
	if res, err := addItem(t, conn); err != nil || res.GetVersion() != 0 {
		t.Fatalf("AddItem = %v, %v; want version 0", res, err)
	}

	if err := esdb.Close(); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, conn, healthpb.HealthCheckResponse_NOT_SERVING)
	if _, err := addItem(t, conn); status.Code(err) != codes.Unavailable {
		t.Fatalf("AddItem with the store down = %v; want Unavailable", err)
	}

	esdb.Restart(t)
	waitHealth(t, conn, healthpb.HealthCheckResponse_SERVING)
	if res, err := addItem(t, conn); err != nil || res.GetVersion() != 1 {
		t.Fatalf("AddItem after the store came back = %v, %v; want version 1", res, err)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancellation; want nil", err)
	}
}

func TestRunStartsBeforeTheStore(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	conn, stop := service(t, "esdb://"+addr+"?tls=false")
	waitHealth(t, conn, healthpb.HealthCheckResponse_NOT_SERVING)
	if _, err := addItem(t, conn); status.Code(err) != codes.Unavailable {
		t.Fatalf("AddItem without a store = %v; want Unavailable", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancellation; want nil", err)
	}
}

// priceOfA is the catalog of these tests: product "a" at EUR 1.
func priceOfA(t *testing.T) *catalog.Static {
	t.Helper()
	c, err := catalog.NewStatic(map[string]cart.Money{"a": {CurrencyCode: "EUR", Units: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
