package querysvc_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/querysvc"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

const (
	serving    = healthpb.HealthCheckResponse_SERVING
	notServing = healthpb.HealthCheckResponse_NOT_SERVING
)

// gate is a decoder hook that holds the projector while closed.
type gate struct {
	held atomic.Pointer[chan struct{}]
	mu   sync.Mutex
}

// hold makes the next decodes wait until open.
func (g *gate) hold() {
	ch := make(chan struct{})
	g.held.Store(&ch)
}

// open lets every decode through; it is safe to call more than once.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch := g.held.Swap(nil); ch != nil {
		close(*ch)
	}
}

func (g *gate) decode(typ string, data []byte) (cart.Event, error) {
	if ch := g.held.Load(); ch != nil {
		<-*ch
	}
	return cart.Unmarshal(typ, data)
}

// withGate wires g into query-svc and sets the other options the health
// tests need. The caller registers t.Cleanup(g.open) after starting the
// service, so that the gate opens before the service stops (cleanups run
// last first) and a failing test cannot leave the stop waiting on it.
func withGate(g *gate, maxLag time.Duration) func(*querysvc.Config) {
	return func(cfg *querysvc.Config) {
		cfg.Decode = g.decode
		cfg.MaxLag = maxLag
	}
}

// statusOf is one health name's status now.
func (s *service) statusOf(t *testing.T, name string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := s.health.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: name})
	if err != nil {
		t.Fatalf("health check of %q: %v", name, err)
	}
	return resp.GetStatus()
}

// TestHealthNotServingWhileReplayingABacklog: a query-svc started on a log
// of 2,000 events says NOT_SERVING for GetCart (and the whole server) while
// it replays them, though the history calls, which read EventStoreDB, are
// served; once SERVING, GetCart answers the last version of every cart.
func TestHealthNotServingWhileReplayingABacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs query-svc on EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	const users, perUser = 40, 50
	g := &gate{}
	g.hold() // the replay waits until the test has seen NOT_SERVING
	s := startServiceWith(t, serviceOptions{
		configure: withGate(g, time.Minute),
		seed: func(es *eventstore.Store) {
			ctx := ctxT(t)
			for u := range users {
				evs := make([]cart.Event, perUser)
				for i := range evs {
					evs[i] = cart.ItemAdded{ProductID: fmt.Sprintf("sku-%d", i), Quantity: 1, UnitPrice: eur(1)}
				}
				meta := cart.Metadata{CommandID: fmt.Sprintf("seed-%d", u), CommandType: "AddItem", Time: time.Now().UTC()}
				if _, err := es.AppendEvents(ctx, fmt.Sprintf("user-%d", u), -1, meta, evs); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
	t.Cleanup(g.open)
	s.waitHealthOf(t, querysvc.HealthGetCart, notServing)
	s.waitHealthOf(t, querysvc.HealthGetCartHistory, serving)
	for _, name := range []string{"", cartv1.CartQueryService_ServiceDesc.ServiceName} {
		if st := s.statusOf(t, name); st != notServing {
			t.Errorf("health of %q while replaying = %v, want NOT_SERVING", name, st)
		}
	}
	g.open()
	s.waitHealthOf(t, querysvc.HealthGetCart, serving)
	for _, u := range []int{0, users - 1} {
		resp, err := s.query.GetCart(ctxT(t), &cartv1.GetCartRequest{UserId: fmt.Sprintf("user-%d", u)})
		if err != nil {
			t.Fatal(err)
		}
		if v := resp.GetCart().GetVersion(); v != perUser-1 {
			t.Errorf("GetCart(user-%d) once SERVING = version %d, want %d", u, v, perUser-1)
		}
	}
}

// TestHealthNotServingWhileLagExceedsMaxLag pauses the projector on a new
// event: once the event is older than --max-lag GetCart's names go
// NOT_SERVING (history stays SERVING), and they come back once it is
// applied.
func TestHealthNotServingWhileLagExceedsMaxLag(t *testing.T) {
	if testing.Short() {
		t.Skip("runs query-svc on EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	g := &gate{}
	s := startServiceWith(t, serviceOptions{configure: withGate(g, 200*time.Millisecond)})
	t.Cleanup(g.open)
	s.waitHealthOf(t, querysvc.HealthGetCart, serving)

	g.hold()
	meta := cart.Metadata{CommandID: "c1", CommandType: "AddItem", Time: time.Now().UTC()}
	v, err := s.es.AppendEvents(ctxT(t), "carol", -1, meta, []cart.Event{cart.ItemAdded{ProductID: "sku-1", Quantity: 1, UnitPrice: eur(3)}})
	if err != nil {
		t.Fatal(err)
	}
	s.waitHealthOf(t, querysvc.HealthGetCart, notServing)
	if st := s.statusOf(t, ""); st != notServing {
		t.Errorf(`health of "" while lagging = %v, want NOT_SERVING`, st)
	}
	if st := s.statusOf(t, querysvc.HealthGetCartAsOf); st != serving {
		t.Errorf("health of %q while the projection lags = %v, want SERVING", querysvc.HealthGetCartAsOf, st)
	}
	g.open()
	s.waitHealthOf(t, querysvc.HealthGetCart, serving)
	resp, err := s.query.GetCart(ctxT(t), &cartv1.GetCartRequest{UserId: "carol", MinVersion: proto.Int64(v)})
	if err != nil || resp.GetCart().GetVersion() != v {
		t.Errorf("GetCart after the lag = %v, %v; want version %d", resp.GetCart(), err, v)
	}
}

// TestHealthEventStoreOutageLeavesGetCartServing: with EventStoreDB
// unreachable the history names go NOT_SERVING and their calls fail, while
// GetCart, served from MongoDB, stays SERVING and answers.
func TestHealthEventStoreOutageLeavesGetCartServing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs query-svc on EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	s := startServiceWith(t, serviceOptions{esdbProxy: true})
	s.waitHealthOf(t, querysvc.HealthGetCartHistory, serving)
	s.waitHealthOf(t, querysvc.HealthGetCart, serving)
	meta := cart.Metadata{CommandID: "c1", CommandType: "AddItem", Time: time.Now().UTC()}
	v, err := s.es.AppendEvents(ctxT(t), "dave", -1, meta, []cart.Event{cart.ItemAdded{ProductID: "sku-1", Quantity: 2, UnitPrice: eur(3)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.query.GetCart(ctxT(t), &cartv1.GetCartRequest{UserId: "dave", MinVersion: proto.Int64(v)}); err != nil {
		t.Fatal(err)
	}

	s.esdb.Pause()
	s.waitHealthOf(t, querysvc.HealthGetCartHistory, notServing)
	if st := s.statusOf(t, querysvc.HealthGetCartAsOf); st != notServing {
		t.Errorf("health of %q with EventStoreDB down = %v, want NOT_SERVING", querysvc.HealthGetCartAsOf, st)
	}
	for _, name := range []string{"", cartv1.CartQueryService_ServiceDesc.ServiceName, querysvc.HealthGetCart} {
		if st := s.statusOf(t, name); st != serving {
			t.Errorf("health of %q with EventStoreDB down = %v, want SERVING", name, st)
		}
	}
	resp, err := s.query.GetCart(ctxT(t), &cartv1.GetCartRequest{UserId: "dave"})
	if err != nil || resp.GetCart().GetVersion() != v {
		t.Errorf("GetCart with EventStoreDB down = %v, %v; want version %d", resp.GetCart(), err, v)
	}
	short, cancel := context.WithTimeout(ctxT(t), 5*time.Second)
	defer cancel()
	if _, err := s.query.GetCartHistory(short, &cartv1.GetCartHistoryRequest{UserId: "dave"}); status.Code(err) != codes.Unavailable {
		t.Errorf("GetCartHistory with EventStoreDB down = %v, want UNAVAILABLE", err)
	}
	s.esdb.Resume()
	s.waitHealthOf(t, querysvc.HealthGetCartHistory, serving)
}

// TestShutdownDrains: after the stop is requested every name is
// NOT_SERVING while GetCart is still answered, then the server stops.
func TestShutdownDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("runs query-svc on EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	s := startServiceWith(t, serviceOptions{configure: func(cfg *querysvc.Config) { cfg.Drain = 3 * time.Second }})
	s.waitHealthOf(t, querysvc.HealthGetCart, serving)
	s.waitHealthOf(t, querysvc.HealthGetCartHistory, serving)

	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	for _, name := range []string{"", querysvc.HealthGetCart, querysvc.HealthGetCartHistory} {
		s.waitHealthOf(t, name, notServing)
	}
	if _, err := s.query.GetCart(ctxT(t), &cartv1.GetCartRequest{UserId: "erin"}); err != nil {
		t.Fatalf("GetCart during the drain: %v", err)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Run returned during the drain: %v", err)
	default:
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := s.query.GetCart(ctxT(t), &cartv1.GetCartRequest{UserId: "erin"}); status.Code(err) != codes.Unavailable {
		t.Errorf("GetCart after the stop = %v, want UNAVAILABLE", err)
	}
}
