package readside

import (
	"context"
	"errors"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

// errFakeLost is the fake lease's ErrLeaseLost.
var errFakeLost = errors.New("fake lease lost")

// leaseDB is the stored lease document the fake leases of several
// replicas share.
type leaseDB struct {
	mu     sync.Mutex
	holder string
	epoch  int64
}

// set makes holder ("" for none) the holder at a new epoch, as a takeover
// by another replica or an expiry would.
func (db *leaseDB) set(holder string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.holder = holder
	db.epoch++
}

func (db *leaseDB) current() string {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.holder
}

// fakeLease is one replica's view of the lease in leaseDB.
type fakeLease struct {
	db       *leaseDB
	id       string
	epoch    atomic.Int64
	acquires atomic.Int64
	renewErr atomic.Pointer[error] // set: every Renew fails with it
}

func (f *fakeLease) Acquire(context.Context) (int64, bool, error) {
	f.acquires.Add(1)
	f.db.mu.Lock()
	defer f.db.mu.Unlock()
	if f.db.holder != "" && f.db.holder != f.id {
		return 0, false, nil
	}
	if f.db.holder != f.id {
		f.db.holder = f.id
		f.db.epoch++
	}
	f.epoch.Store(f.db.epoch)
	return f.db.epoch, true, nil
}

func (f *fakeLease) Renew(context.Context) error {
	if p := f.renewErr.Load(); p != nil {
		return *p
	}
	f.db.mu.Lock()
	defer f.db.mu.Unlock()
	if f.db.holder != f.id || f.db.epoch != f.epoch.Load() {
		f.epoch.Store(0)
		return errFakeLost
	}
	return nil
}

func (f *fakeLease) Release(context.Context) error {
	f.db.mu.Lock()
	defer f.db.mu.Unlock()
	if f.db.holder == f.id && f.db.epoch == f.epoch.Load() {
		f.db.holder = ""
	}
	f.epoch.Store(0)
	return nil
}

func (f *fakeLease) Epoch() int64                           { return f.epoch.Load() }
func (f *fakeLease) Holder(context.Context) (string, error) { return f.db.current(), nil }
func (f *fakeLease) ID() string                             { return f.id }

// memStore is a carts collection in memory; it counts checkpoint reads.
type memStore struct {
	mu      sync.Mutex
	cp      *eventlog.Position
	docs    map[string]projection.CartDoc
	cpReads atomic.Int64
}

func newMemStore() *memStore { return &memStore{docs: map[string]projection.CartDoc{}} }

func (m *memStore) LoadCheckpoint(context.Context, string) (*eventlog.Position, error) {
	m.cpReads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cp == nil {
		return nil, nil
	}
	p := *m.cp
	return &p, nil
}

func (m *memStore) SaveCheckpoint(_ context.Context, _ string, pos eventlog.Position) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cp = &pos
	return nil
}

func (m *memStore) LoadCarts(_ context.Context, ids []string) (map[string]projection.CartDoc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]projection.CartDoc{}
	for _, id := range ids {
		if d, ok := m.docs[id]; ok {
			out[id] = d
		}
	}
	return out, nil
}

func (m *memStore) WriteCarts(_ context.Context, ws []projection.CartWrite) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range ws {
		m.docs[w.Doc.UserID] = w.Doc
	}
	return nil, nil
}

func (m *memStore) GetCart(_ context.Context, id string) (projection.CartDoc, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[id]
	return d, ok, nil
}

func (m *memStore) ScanCarts(context.Context) iter.Seq2[projection.CartDoc, error] {
	return func(func(projection.CartDoc, error) bool) {}
}

func (m *memStore) CountCarts(context.Context) (int64, error) { return 0, nil }

// countingStore is the fenced store of the live projector; its checkpoint
// loads say that a projector started.
type countingStore struct {
	*memStore
	loads atomic.Int64
}

func (c *countingStore) LoadCheckpoint(ctx context.Context, name string) (*eventlog.Position, error) {
	c.loads.Add(1)
	return c.memStore.LoadCheckpoint(ctx, name)
}

// idleSource is a log with no events: a subscription blocks until closed.
type idleSource struct{}

func (idleSource) Subscribe(context.Context, *eventlog.Position) (eventlog.Subscription, error) {
	return &idleSub{done: make(chan struct{})}, nil
}

type idleSub struct {
	once sync.Once
	done chan struct{}
}

func (s *idleSub) Next(ctx context.Context) (eventlog.Message, error) {
	select {
	case <-ctx.Done():
		return eventlog.Message{}, ctx.Err()
	case <-s.done:
		return eventlog.Message{}, errors.New("closed")
	}
}

func (s *idleSub) Close() error { s.once.Do(func() { close(s.done) }); return nil }

// staticCatalog always names the default collection.
type staticCatalog struct{}

func (staticCatalog) Active(context.Context) (string, error)  { return "carts", nil }
func (staticCatalog) SetActive(context.Context, string) error { return nil }
func (staticCatalog) Drop(context.Context, string) error      { return nil }

// replica is a Live with a fake lease, running until the test ends.
type replica struct {
	live   *Live
	lease  *fakeLease
	reads  *memStore
	fenced *countingStore
	stop   func()
}

const testTTL = 300 * time.Millisecond

func startReplica(t *testing.T, db *leaseDB, id string) *replica {
	t.Helper()
	r := &replica{lease: &fakeLease{db: db, id: id}, reads: newMemStore()}
	r.fenced = &countingStore{memStore: r.reads}
	live, err := New(Config{
		Catalog:          staticCatalog{},
		Open:             func(string) CartStore { return r.reads },
		OpenFenced:       func(string) projection.Store { return r.fenced },
		Projection:       projection.Config{Source: idleSource{}},
		Lease:            r.lease,
		LeaseTTL:         testTTL,
		ProgressInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.live = live
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = live.Run(ctx) }()
	r.stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(r.stop)
	return r
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLiveRunsTheProjectorOnlyWhileHoldingTheLease(t *testing.T) {
	t.Parallel()
	db := &leaseDB{holder: "other", epoch: 1}
	r := startReplica(t, db, "me")

	// Another replica holds it: this one keeps trying, serves no projector.
	eventually(t, "several acquire attempts", func() bool { return r.lease.acquires.Load() >= 3 })
	if r.live.Active() || r.fenced.loads.Load() != 0 {
		t.Fatalf("Active = %v, projector checkpoint loads %d while another replica holds the lease", r.live.Active(), r.fenced.loads.Load())
	}
	err := r.live.CheckHolder(context.Background())
	if !errors.Is(err, ErrNotHolder) || !strings.Contains(err.Error(), `"other"`) {
		t.Errorf("CheckHolder = %v, want ErrNotHolder naming the holder", err)
	}
	if _, err := r.live.Hold(); !errors.Is(err, ErrNotHolder) {
		t.Errorf("Hold on a non-holder = %v, want ErrNotHolder", err)
	}

	// It is free: this replica takes it and starts the projector, fenced.
	db.set("")
	eventually(t, "the replica runs the projector", func() bool { return r.live.Active() && r.fenced.loads.Load() > 0 })
	if err := r.live.CheckHolder(context.Background()); err != nil {
		t.Errorf("CheckHolder on the holder = %v", err)
	}

	// Taken over (the renewal finds it lost): the projector stops.
	db.set("other")
	eventually(t, "the replica stops the projector", func() bool { return !r.live.Active() })
	if _, p := r.live.Current(); p == nil {
		t.Fatal("no projector ran")
	}
	loads, tries := r.fenced.loads.Load(), r.lease.acquires.Load()
	eventually(t, "more acquire attempts", func() bool { return r.lease.acquires.Load() >= tries+3 })
	if n := r.fenced.loads.Load(); n != loads {
		t.Errorf("projector checkpoint loads went from %d to %d after the lease was lost", loads, n)
	}
}

func TestLiveStopsTheProjectorWhenRenewalsFailPastValidity(t *testing.T) {
	t.Parallel()
	db := &leaseDB{}
	r := startReplica(t, db, "me")
	eventually(t, "the replica runs the projector", r.live.Active)
	unreachable := errors.Join(cart.ErrUnavailable, errors.New("mongo down"))
	r.lease.renewErr.Store(&unreachable)
	eventually(t, "the replica stops the projector", func() bool { return !r.live.Active() })
	// The stored lease is still this replica's (nobody else took it), yet
	// the projector stays stopped until a renewal or acquire succeeds.
	r.lease.renewErr.Store(nil)
	eventually(t, "the replica runs the projector again", r.live.Active)
}

func TestLiveReleasesTheLeaseOnShutdown(t *testing.T) {
	t.Parallel()
	db := &leaseDB{}
	a := startReplica(t, db, "a")
	eventually(t, "a holds the lease", a.live.Active)
	b := startReplica(t, db, "b")
	eventually(t, "b tried", func() bool { return b.lease.acquires.Load() >= 2 })
	if b.live.Active() {
		t.Fatal("both replicas active")
	}
	a.stop()
	if h := db.current(); h == "a" {
		t.Fatalf("lease still held by %q after a's shutdown", h)
	}
	eventually(t, "b takes over", b.live.Active)
}

func TestLiveWakesWaitersWhenTheHoldersCheckpointMoves(t *testing.T) {
	t.Parallel()
	db := &leaseDB{holder: "other", epoch: 1}
	r := startReplica(t, db, "me")
	eventually(t, "the collection is open", func() bool { return r.live.Collection() != "" })

	// Nobody waits: the checkpoint is not read.
	eventually(t, "several acquire attempts", func() bool { return r.lease.acquires.Load() >= 3 })
	if n := r.reads.cpReads.Load(); n != 0 {
		t.Errorf("%d checkpoint reads with no reader waiting", n)
	}

	// The first read after a quiet spell wakes the waiter (nothing to
	// compare with); then only a moved checkpoint does.
	chWake, cancel := r.live.Wait("u1", 3)
	ch := chWake.C
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("first checkpoint read did not wake the waiter")
	}
	cancel()
	chWake, cancel = r.live.Wait("u1", 3)
	ch = chWake.C
	defer cancel()
	reads := r.reads.cpReads.Load()
	eventually(t, "more checkpoint reads", func() bool { return r.reads.cpReads.Load() >= reads+3 })
	select {
	case <-ch:
		t.Fatal("woken while the checkpoint stood still")
	default:
	}
	if err := r.reads.SaveCheckpoint(context.Background(), "carts", eventlog.Position{Commit: 7, Prepare: 7}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("a moved checkpoint did not wake the waiter")
	}
	cancel()
	reads, tries := r.reads.cpReads.Load(), r.lease.acquires.Load()
	eventually(t, "more acquire attempts", func() bool { return r.lease.acquires.Load() >= tries+3 })
	if n := r.reads.cpReads.Load(); n > reads+1 { // one read may have been under way
		t.Errorf("checkpoint read %d more times after the last waiter left", n-reads)
	}
}
