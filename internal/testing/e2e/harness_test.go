package e2e_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/commandsvc"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/querysvc"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// env is the product started piece by piece in-process, so that a test can
// stop and restart query-svc while the stores and command-svc keep running.
type env struct {
	t        *testing.T
	esdb     *standin.Server
	mongoURI string
	mongoDB  string
	cmd      cartv1.CartCommandServiceClient
	query    cartv1.CartQueryServiceClient
	admin    cartv1.CartAdminServiceClient

	queryAddr, adminAddr string
	stopQuery            func()
	// decode is query-svc's event decoder from its next (re)start on; nil:
	// the default. Tests set it to play a deploy that reads new events.
	decode projection.Decoder
}

func logger(t *testing.T) *slog.Logger {
	if os.Getenv("E2E_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, esdb: standin.Start(t)}
	mongo := embeddedmongo.StartForTest(t)
	e.mongoURI = mongo.URI()
	e.mongoDB = mongo.NewDatabaseName(t)

	lis := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- commandsvc.Run(ctx, commandsvc.Config{ServerConfig: rpc.ServerConfig{Listener: lis}, ESDBURL: e.esdb.ConnectionString(), SnapshotEvery: 20}, logger(t).With("service", "command-svc"))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("command-svc: %v", err)
		}
	})
	conn := dial(t, lis.Addr().String())
	waitServing(t, conn)
	e.cmd = cartv1.NewCartCommandServiceClient(conn)

	qlis, alis := listen(t), listen(t)
	e.queryAddr, e.adminAddr = qlis.Addr().String(), alis.Addr().String()
	e.runQuery(qlis, alis)
	t.Cleanup(func() {
		if e.stopQuery != nil {
			e.stopQuery()
		}
	})
	qconn := dial(t, e.queryAddr)
	e.query = cartv1.NewCartQueryServiceClient(qconn)
	e.admin = cartv1.NewCartAdminServiceClient(dial(t, e.adminAddr))
	waitServing(t, qconn)
	return e
}

// listen binds a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// restartQuery starts query-svc again on the addresses it had.
func (e *env) restartQuery() {
	e.t.Helper()
	e.runQuery(relisten(e.t, e.queryAddr), relisten(e.t, e.adminAddr))
	waitServing(e.t, dial(e.t, e.queryAddr))
}

// runQuery runs query-svc until stopQuery.
func (e *env) runQuery(lis, admin net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- querysvc.Run(ctx, querysvc.Config{
			ServerConfig:  rpc.ServerConfig{Listener: lis, HealthInterval: 100 * time.Millisecond},
			AdminListener: admin,
			ESDBURL:       e.esdb.ConnectionString(),
			MongoURI:      e.mongoURI,
			MongoDB:       e.mongoDB,
			Decode:        e.decode,
		}, logger(e.t).With("service", "query-svc"))
	}()
	e.stopQuery = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("query-svc: %v", err)
		}
		e.stopQuery = nil
	}
}

// relisten binds addr again after the previous server let it go.
func relisten(t *testing.T, addr string) net.Listener {
	t.Helper()
	for i := 0; ; i++ {
		lis, err := net.Listen("tcp", addr)
		if err == nil {
			return lis
		}
		if i > 200 {
			t.Fatalf("listen %s: %v", addr, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func waitServing(t *testing.T, conn *grpc.ClientConn) {
	t.Helper()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving after 20s: %v %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
