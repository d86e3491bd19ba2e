package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/dev/devauth"
	"github.com/acme/cart/internal/testing/logtest"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// TestRunServesThenStopsCleanly runs the local stack as a newcomer would
// (on free ports), uses both services through the printed addresses, and
// stops it as Ctrl-C would.
func TestRunServesThenStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr logtest.Buffer
	data := t.TempDir()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{
			"-command-listen", "127.0.0.1:0", "-query-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0",
			"-esdb-listen", "127.0.0.1:0", "-mongo-listen", "127.0.0.1:0", "-data-dir", data, "-log-level", "warn",
			"-command-metrics-listen", "127.0.0.1:0", "-query-metrics-listen", "127.0.0.1:0",
		}, &stdout, &stderr)
	}()
	addr := func(name string) string {
		m := regexp.MustCompile(name + `\s+(127\.0\.0\.1:\d+)`).FindStringSubmatch(stdout.String())
		if m == nil {
			return ""
		}
		return m[1]
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stdout.String(), "Ctrl-C stops everything") {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 60s:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
	for _, want := range []string{"grpcurl", "cart.v1.CartCommandService/AddItem", "esdb://", "mongodb://", "make token SUB=alice", "authorization: Bearer"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}

	// The newcomer's token, as `make token SUB=newcomer` mints it from the
	// stack's dev key.
	minter, err := devauth.Ensure(filepath.Join(data, "auth"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := minter.Mint("newcomer", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(a string) *grpc.ClientConn {
		conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	cmd := cartv1.NewCartCommandServiceClient(dial(addr("command-svc")))
	qry := cartv1.NewCartQueryServiceClient(dial(addr("query-svc")))
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	cctx = metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+token)
	added, err := cmd.AddItem(cctx, &cartv1.AddItemRequest{UserId: "newcomer", ProductId: "sku-1", Quantity: 2,
		UnitPrice: &cartv1.Money{CurrencyCode: "EUR", Units: 9, Nanos: 990_000_000}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := qry.GetCart(cctx, &cartv1.GetCartRequest{UserId: "newcomer", MinVersion: proto.Int64(added.GetVersion())})
	if err != nil || got.GetCart().GetItemCount() != 2 {
		t.Fatalf("GetCart = %v, %v", got, err)
	}

	// The printed metrics addresses answer, each with its own service's
	// series.
	for service, want := range map[string]string{"command-svc": "cart_commands_total", "query-svc": "cart_projection_active"} {
		m := regexp.MustCompile(`metrics\s+(http://127\.0\.0\.1:\d+/metrics)\s+http://\S+/debug/pprof/\s+\(` + service + `\)`).FindStringSubmatch(stdout.String())
		if m == nil {
			t.Errorf("no metrics address of %s printed:\n%s", service, stdout.String())
			continue
		}
		resp, err := http.Get(m[1])
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d, %v; want 200 with %s:\n%.2000s", m[1], resp.StatusCode, err, want, body)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after Ctrl-C: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run did not stop within 60s")
	}
}
