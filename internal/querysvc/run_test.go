package querysvc_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/dev/netfault"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/querysvc"
	"github.com/acme/cart/internal/readmodel"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// service is query-svc running in-process on a stand-in and FerretDB (the
// latter behind a proxy that the test can take down).
type service struct {
	es     *eventstore.Store
	mongo  *netfault.Proxy
	esdb   *netfault.Proxy // nil unless serviceOptions.esdbProxy
	fdbURI string
	conn   *grpc.ClientConn
	query  cartv1.CartQueryServiceClient
	health healthpb.HealthClient
	stop   func() error
}

func startService(t testing.TB) *service {
	t.Helper()
	return startServiceWith(t, serviceOptions{})
}

// serviceOptions vary startService for one test.
type serviceOptions struct {
	// seed, if set, writes to the event store before query-svc starts.
	seed func(es *eventstore.Store)
	// configure, if set, changes query-svc's configuration.
	configure func(cfg *querysvc.Config)
	// esdbProxy puts EventStoreDB behind a proxy too (service.esdb).
	esdbProxy bool
}

func startServiceWith(t testing.TB, o serviceOptions) *service {
	t.Helper()
	esdb := standin.Start(t)
	fdb := embeddedmongo.StartForTest(t)
	px := netfault.Start(t, strings.TrimSuffix(strings.TrimPrefix(fdb.URI(), "mongodb://"), "/"))
	es, err := eventstore.Open(context.Background(), esdb.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	if o.seed != nil {
		o.seed(es)
	}
	esdbURL := esdb.ConnectionString()
	var esdbPx *netfault.Proxy
	if o.esdbProxy {
		esdbPx = netfault.Start(t, esdb.Addr())
		esdbURL = "esdb://" + esdbPx.Addr() + "?tls=false"
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := querysvc.Config{
		ServerConfig: rpc.ServerConfig{Listener: lis, HealthInterval: 50 * time.Millisecond, Security: rpc.SecurityConfig{InsecureNoAuth: true}},
		ESDBURL:      esdbURL,
		MongoURI:     "mongodb://" + px.Addr() + "/?serverSelectionTimeoutMS=300",
		MongoDB:      "cart",
		MongoCompat:  "ferretdb",
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- querysvc.Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &service{
		es: es, mongo: px, esdb: esdbPx, fdbURI: fdb.URI(), conn: conn,
		query:  cartv1.NewCartQueryServiceClient(conn),
		health: healthpb.NewHealthClient(conn),
		stop:   stop,
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitHealth follows the health service until it reports want.
func (s *service) waitHealth(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	s.waitHealthOf(t, cartv1.CartQueryService_ServiceDesc.ServiceName, want)
}

// waitHealthOf follows one health name until it reports want.
func (s *service) waitHealthOf(t *testing.T, name string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel() // an open Watch would hold up the graceful stop
	stream, err := s.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: name})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("health of %q: waiting for %v: %v", name, want, err)
		}
		if resp.GetStatus() == want {
			return
		}
	}
}

func eur(units int64) cart.Money { return cart.Money{CurrencyCode: "EUR", Units: units} }

func TestGetCartReadYourWritesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs query-svc on EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	s := startService(t)
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	ctx := ctxT(t)

	resp, err := s.query.GetCart(ctx, &cartv1.GetCartRequest{UserId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.GetCart(); c.GetVersion() != -1 || len(c.GetItems()) != 0 || c.GetUpdateTime() != nil {
		t.Fatalf("cart of a new user = %v, want empty at version -1", c)
	}

	// Each command's version is a read-your-writes token: the very next
	// GetCart with it sees the change, with no retry loop in the test.
	meta := cart.Metadata{CommandID: "c1", CommandType: "AddItem", Time: time.Now().UTC()}
	v, err := s.es.AppendEvents(ctx, "alice", -1, meta, []cart.Event{cart.ItemAdded{ProductID: "sku-1", Quantity: 2, UnitPrice: eur(5)}})
	if err != nil {
		t.Fatal(err)
	}
	for i, events := range [][]cart.Event{
		{cart.ItemAdded{ProductID: "sku-2", Quantity: 1, UnitPrice: eur(7)}},
		{cart.ItemQuantityChanged{ProductID: "sku-1", Quantity: 3}},
	} {
		resp, err := s.query.GetCart(ctx, &cartv1.GetCartRequest{UserId: "alice", MinVersion: proto.Int64(v)})
		if err != nil {
			t.Fatalf("GetCart(min_version %d): %v", v, err)
		}
		if got := resp.GetCart().GetVersion(); got < v {
			t.Fatalf("GetCart(min_version %d) answered version %d", v, got)
		}
		meta.CommandID = "c" + string(rune('2'+i))
		if v, err = s.es.AppendEvents(ctx, "alice", v, meta, events); err != nil {
			t.Fatal(err)
		}
	}
	resp, err = s.query.GetCart(ctx, &cartv1.GetCartRequest{UserId: "alice", MinVersion: proto.Int64(v)})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.GetCart()
	if c.GetVersion() != 2 || c.GetItemCount() != 4 || c.GetTotal().GetUnits() != 22 || c.GetStale() || c.GetUpdateTime() == nil {
		t.Errorf("cart = %v, want version 2, 4 items, total 22 EUR", c)
	}

	// A version that never comes: UNAVAILABLE with RetryInfo before the deadline.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = s.query.GetCart(short, &cartv1.GetCartRequest{UserId: "alice", MinVersion: proto.Int64(v + 5)})
	st := status.Convert(err)
	retry := false
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			retry = true
		}
	}
	if st.Code() != codes.Unavailable || !retry {
		t.Errorf("GetCart(unreachable min_version) = %v, want UNAVAILABLE with RetryInfo", err)
	}

	// Shutdown stores the checkpoint.
	if err := s.stop(); err != nil {
		t.Fatalf("Run = %v, want nil after shutdown", err)
	}
	rc, err := readmodel.ConnectWith(ctx, s.fdbURI, readmodel.FerretDBCompat())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(context.Background())
	cp, err := rc.Store("cart", readmodel.Collections{}).LoadCheckpoint(ctx, "carts")
	if err != nil || cp == nil {
		t.Errorf("checkpoint after shutdown = %v, %v; want one", cp, err)
	}
}

func TestHealthFollowsMongo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs query-svc on EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	s := startService(t)
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	s.mongo.Pause()
	s.waitHealth(t, healthpb.HealthCheckResponse_NOT_SERVING)
	_, err := s.query.GetCart(ctxT(t), &cartv1.GetCartRequest{UserId: "bob"})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("GetCart with MongoDB down = %v, want UNAVAILABLE", err)
	}
	s.mongo.Resume()
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	err := querysvc.Run(context.Background(), querysvc.Config{ServerConfig: rpc.ServerConfig{Listen: "bad"}, MongoURI: "http://x"}, nil)
	if err == nil || !strings.Contains(err.Error(), "listen") || !strings.Contains(err.Error(), "mongo-uri") {
		t.Errorf("Run = %v, want both problems reported", err)
	}
}
