package querysvc_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/querysvc"
	"github.com/acme/cart/internal/readmodel"
	"github.com/acme/cart/internal/readside"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// replicaTTL is short so that takeovers in these tests are quick.
const replicaTTL = 2 * time.Second

// queryReplica is one query-svc replica running in-process.
type queryReplica struct {
	name   string
	live   atomic.Pointer[readside.Live]
	query  cartv1.CartQueryServiceClient
	health healthpb.HealthClient
	stop   func() error
}

// active says whether the replica runs the projector (false before its
// read side is built).
func (r *queryReplica) active() bool {
	l := r.live.Load()
	return l != nil && l.Active()
}

func startReplica(t *testing.T, name, esdbURL, mongoURI, db string) *queryReplica {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &queryReplica{name: name}
	cfg := querysvc.Config{
		ServerConfig: rpc.ServerConfig{Listener: lis, HealthInterval: 50 * time.Millisecond, Security: rpc.SecurityConfig{InsecureNoAuth: true}},
		ESDBURL:      esdbURL,
		MongoURI:     mongoURI,
		MongoDB:      db,
		MongoCompat:  "ferretdb",
		LeaseTTL:     replicaTTL,
		LeaseHolder:  name,
		LiveStarted:  func(l *readside.Live) { r.live.Store(l) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- querysvc.Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	var once sync.Once
	var runErr error
	r.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = r.stop() })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r.query = cartv1.NewCartQueryServiceClient(conn)
	r.health = healthpb.NewHealthClient(conn)
	return r
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// addItem appends one ItemAdded of a new product (so that applying it
// twice would show as an extra line) and returns the cart's new version.
func addItem(t *testing.T, es *eventstore.Store, user string, version int64) int64 {
	t.Helper()
	meta := cart.Metadata{CommandID: fmt.Sprintf("%s-%d", user, version+1), CommandType: "AddItem", Time: time.Now().UTC()}
	ev := cart.ItemAdded{ProductID: fmt.Sprintf("sku-%d", version+1), Quantity: 1, UnitPrice: eur(1)}
	v, err := es.AppendEvents(ctxT(t), user, version, meta, []cart.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkCart asks r for user's cart at min_version v and checks it holds
// exactly the v+1 lines of addItem, each once.
func checkCart(t *testing.T, r *queryReplica, user string, v int64) {
	t.Helper()
	resp, err := r.query.GetCart(ctxT(t), &cartv1.GetCartRequest{UserId: user, MinVersion: proto.Int64(v)})
	if err != nil {
		t.Fatalf("%s: GetCart(%s, min_version %d): %v", r.name, user, v, err)
	}
	c := resp.GetCart()
	if c.GetVersion() != v || len(c.GetItems()) != int(v+1) || c.GetItemCount() != int32(v+1) {
		t.Fatalf("%s: cart %s = version %d, %d lines, %d items; want version %d with %d lines of one item",
			r.name, user, c.GetVersion(), len(c.GetItems()), c.GetItemCount(), v, v+1)
	}
}

// TestReplicasRunOneProjector: two query-svc replicas on one read model
// never run their projectors at once, both answer min_version reads (the
// one without the lease learning progress from the checkpoint), and when
// the holder stops the other takes over.
func TestReplicasRunOneProjector(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two query-svc replicas on EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	esdb := standin.Start(t)
	fdb := embeddedmongo.StartForTest(t)
	db := fdb.NewDatabaseName(t)
	es, err := eventstore.Open(context.Background(), esdb.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })

	a := startReplica(t, "replica-a", esdb.ConnectionString(), fdb.URI(), db)
	b := startReplica(t, "replica-b", esdb.ConnectionString(), fdb.URI(), db)
	var both atomic.Int64 // samples with both projectors active
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopWatch:
				return
			case <-t.C:
				if a.active() && b.active() {
					both.Add(1)
				}
			}
		}
	}()
	waitFor(t, "one replica runs the projector", func() bool { return a.active() || b.active() })
	holder, other := a, b
	if b.active() {
		holder, other = b, a
	}
	// Reads go to a replica once its health says so, as a balancer's
	// would: before, its read model may not be open yet (UNAVAILABLE).
	for _, r := range []*queryReplica{holder, other} {
		waitFor(t, r.name+" reports GetCart SERVING", func() bool {
			resp, err := r.health.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: querysvc.HealthGetCart})
			return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
		})
	}

	users := []string{"u1", "u2", "u3", "u4"}
	versions := map[string]int64{}
	for _, u := range users {
		versions[u] = -1
	}
	for round := range 3 {
		for _, u := range users {
			versions[u] = addItem(t, es, u, versions[u])
			// Read-your-writes on either replica; the one without the
			// lease waits on the holder's checkpoint.
			r := holder
			if round%2 == 0 {
				r = other
			}
			checkCart(t, r, u, versions[u])
		}
	}
	// Its own projector never ran (Progress is the holder's, as seen from
	// the checkpoint, on a replica without the lease).
	if _, p := other.live.Load().Current(); p != nil && p.Progress().EventsProcessed != 0 {
		t.Errorf("%s without the lease projected: %+v", other.name, p.Progress())
	}
	if other.active() {
		t.Fatalf("%s active beside %s", other.name, holder.name)
	}
	// GetCart's health on the replica without the lease follows the
	// holder's projection: SERVING once the read model is complete, though
	// no projector runs there.
	waitFor(t, other.name+" reports GetCart SERVING", func() bool {
		resp, err := other.health.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: querysvc.HealthGetCart})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})

	// The holder stops (releasing the lease): the other takes over at once
	// and goes on from the shared checkpoint.
	if err := holder.stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, other.name+" takes over", other.active)
	for _, u := range users {
		versions[u] = addItem(t, es, u, versions[u])
		checkCart(t, other, u, versions[u])
	}
	// The counters move just after readers are told: wait for them, then
	// check that no old event was applied again.
	waitFor(t, other.name+" counts the new events", func() bool { return other.live.Load().Progress().EventsApplied >= int64(len(users)) })
	if pr := other.live.Load().Progress(); pr.EventsApplied != int64(len(users)) {
		t.Errorf("%s applied %d events after the takeover, want %d (only the new ones)", other.name, pr.EventsApplied, len(users))
	}
	close(stopWatch)
	<-watched
	if n := both.Load(); n > 0 {
		t.Errorf("both replicas ran the projector in %d samples", n)
	}
}

// pausableLease is the holder's lease with renewals that can be held up,
// ignoring their context, as in a process paused between the lease loop's
// steps while its projector goes on.
type pausableLease struct {
	*readmodel.Lease
	mu     sync.Mutex
	paused chan struct{} // closed to resume; nil when not paused
}

func (p *pausableLease) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = make(chan struct{})
}

func (p *pausableLease) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused != nil {
		close(p.paused)
		p.paused = nil
	}
}

func (p *pausableLease) Renew(ctx context.Context) error {
	p.mu.Lock()
	ch := p.paused
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return p.Lease.Renew(ctx)
}

// TestPausedHolderCannotWriteAfterLosingIt: a replica whose renewals stop
// (paused) while its projector keeps receiving events cannot store them
// once another replica took the lease over: the checkpoint the new holder
// claimed stays, no document moves, and when the old holder's renewal
// finally runs it stops its projector.
func TestPausedHolderCannotWriteAfterLosingIt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the read side on EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	esdb := standin.Start(t)
	fdb := embeddedmongo.StartForTest(t)
	db := fdb.NewDatabaseName(t)
	ctx := ctxT(t)
	es, err := eventstore.Open(ctx, esdb.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	rc, err := readmodel.ConnectWith(ctx, fdb.URI(), readmodel.FerretDBCompat())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close(context.Background()) })
	catalog := rc.Catalog(db)

	lease := &pausableLease{Lease: rc.Lease(db, querysvc.ProjectorLease, "old", replicaTTL)}
	live, err := readside.New(readside.Config{
		Catalog:    catalog,
		Open:       func(carts string) readside.CartStore { return catalog.Store(carts) },
		OpenFenced: func(carts string) projection.Store { return catalog.Store(carts).Fenced(lease.Lease) },
		Projection: projection.Config{Source: es, MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		Lease:      lease,
		LeaseTTL:   replicaTTL,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = live.Run(runCtx) }()
	t.Cleanup(func() { lease.resume(); stop(); <-done })

	waitFor(t, "the old holder runs the projector", live.Active)
	v1 := addItem(t, es, "u1", -1)
	store := catalog.Store("carts")
	waitFor(t, "u1 projected", func() bool {
		d, ok, err := store.GetCart(ctx, "u1")
		return err == nil && ok && d.Version == v1
	})

	// The old holder pauses; the new one takes over once the lease expired
	// and claims the checkpoint.
	lease.pause()
	takeover := rc.Lease(db, querysvc.ProjectorLease, "new", replicaTTL)
	waitFor(t, "the new holder acquires the lease", func() bool {
		_, ok, err := takeover.Acquire(ctx)
		return err == nil && ok
	})
	claimed, err := store.Fenced(takeover).LoadCheckpoint(ctx, "carts")
	if err != nil || claimed == nil {
		t.Fatalf("new holder: LoadCheckpoint = %v, %v", claimed, err)
	}

	// Events the old holder's projector still receives are not stored.
	_, p := live.Current()
	before := p.Progress().LastEvent
	if before == nil {
		t.Fatal("the old holder's projector sent no event")
	}
	v2 := addItem(t, es, "u1", v1)
	addItem(t, es, "u2", -1)
	waitFor(t, "the old holder's projector tried to store the new events", func() bool {
		pr := p.Progress()
		return before.Less(*pr.LastEvent) && strings.Contains(pr.LastError, readmodel.ErrLeaseLost.Error())
	})
	if cp, err := store.LoadCheckpoint(ctx, "carts"); err != nil || cp == nil || *cp != *claimed {
		t.Errorf("checkpoint = %v, %v; want %v as the new holder claimed it", cp, err, claimed)
	}
	if d, _, err := store.GetCart(ctx, "u1"); err != nil || d.Version != v1 {
		t.Errorf("u1 at version %d (%v), want %d: the old holder wrote version %d", d.Version, err, v1, v2)
	}
	if _, ok, err := store.GetCart(ctx, "u2"); err != nil || ok {
		t.Errorf("u2 stored by the old holder (%v)", err)
	}
	if err := takeover.Check(ctx); err != nil {
		t.Errorf("new holder lost the lease: %v", err)
	}

	// Its renewal runs at last: it finds the lease lost and stops.
	lease.resume()
	waitFor(t, "the old holder stops its projector", func() bool { return !live.Active() })
	if err := takeover.Check(ctx); err != nil {
		t.Errorf("new holder lost the lease after the old one resumed: %v", err)
	}
}
