package readside

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/projection"
)

// DefaultFollowInterval is how often Live checks which carts collection the
// catalog names as active, so that a replica follows a rebuild made by
// another one.
const DefaultFollowInterval = 5 * time.Second

// ErrNotOpen says the active collection is not known yet (the catalog could not
// be read since start); callers retry later.
var ErrNotOpen = fmt.Errorf("read model not open yet: %w", cart.ErrUnavailable)

// Backoff bounds of Live's retries while the catalog cannot be read at start.
const (
	resolveMinBackoff = 100 * time.Millisecond
	resolveMaxBackoff = 5 * time.Second
)

// Config configures Live. Catalog, Open and Projection.Source are required.
type Config struct {
	Catalog Catalog
	// Open returns the store of a carts collection.
	Open func(carts string) CartStore
	// Projection is the template of every projector: the live one, a
	// rebuild's and a verification's. Live sets Name and Store (the
	// collection's name, so that each collection has its own checkpoint);
	// Notifier and Parker serve the live projector (a verification uses
	// neither, a rebuild no Notifier).
	Projection projection.Config
	// FollowInterval is how often the catalog is checked for a switch made
	// elsewhere; 0 means DefaultFollowInterval.
	FollowInterval time.Duration
	// Log receives switches and failures. Nil discards.
	Log *slog.Logger

	// Lease, if set, makes the live projector run only while this replica
	// holds it (one projector per read model however many replicas run);
	// nil runs it always. See lead.
	Lease Lease
	// LeaseTTL is how long the lease lasts unrenewed; Live renews it and
	// retries acquiring it every LeaseTTL/3. Required with Lease.
	LeaseTTL time.Duration
	// OpenFenced returns the store of a carts collection as the live
	// projector writes it: fenced by Lease (readmodel.Store.Fenced).
	// Required with Lease; Open's stores are then only read (GetCart, and
	// the checkpoint watch of a replica that does not hold the lease).
	OpenFenced func(carts string) projection.Store
	// ProgressInterval is how often a replica without the lease reads the
	// checkpoint while readers wait for a version; 0 means
	// DefaultProgressInterval.
	ProgressInterval time.Duration
}

// Live is the read model in use: the active carts collection, which
// queries read (GetCart) and the live projector writes. A rebuild switches
// it to a fresh collection; other replicas follow the catalog. Run it once.
type Live struct {
	cfg Config
	log *slog.Logger

	cur atomic.Pointer[Active] // nil until the active collection is known
	// last is the latest live projector, readable without mu (health
	// checks must not wait for a replay holding mu).
	last atomic.Pointer[projection.Projector]

	mu       sync.Mutex
	runCtx   context.Context // set while Run runs
	proj     *projection.Projector
	stopProj context.CancelFunc // nil when the projector is not running
	projDone chan struct{}
	held     bool   // a rebuild holds the live projector stopped
	switches uint64 // counts swaps, so that follow can tell its catalog read is out of date

	active  atomic.Bool     // the live projector may run: no Lease, or the lease is held
	waiting atomic.Int64    // GetCart calls registered through Wait
	standby standbyProgress // the holder's progress, as a replica without the lease sees it
}

// Active is one carts collection as readers use it. Retiring it (under
// the write lock) waits for the reads in flight; readers that find it
// retired read the current one instead, so no read ever lands on a
// collection that is about to be dropped.
type Active struct {
	name  string
	store CartStore

	mu      sync.RWMutex
	retired bool
}

// New checks cfg and returns a Live ready to Run.
func New(cfg Config) (*Live, error) {
	var errs []error
	if cfg.Catalog == nil {
		errs = append(errs, errors.New("catalog is required"))
	}
	if cfg.Open == nil {
		errs = append(errs, errors.New("open is required"))
	}
	if cfg.FollowInterval < 0 || cfg.ProgressInterval < 0 {
		errs = append(errs, errors.New("follow and progress intervals must not be negative"))
	}
	if cfg.Lease != nil && (cfg.LeaseTTL <= 0 || cfg.OpenFenced == nil) {
		errs = append(errs, errors.New("a lease needs a positive lease TTL and OpenFenced"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("readside: %w", err)
	}
	// Check the template once, so that a switch cannot fail on it later.
	probe := cfg.Projection
	probe.Store = nopStore{}
	if _, err := projection.New(probe); err != nil {
		return nil, fmt.Errorf("readside: %w", err)
	}
	if cfg.FollowInterval == 0 {
		cfg.FollowInterval = DefaultFollowInterval
	}
	if cfg.ProgressInterval == 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.Projection.Notifier == nil {
		// Wait and the lease's hand-overs wake readers through it.
		cfg.Projection.Notifier = projection.NewNotifier()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	l := &Live{cfg: cfg, log: cfg.Log}
	l.active.Store(cfg.Lease == nil)
	return l, nil
}

// GetCart reads the user's document from the active collection; it
// implements query.CartReader. Until the active collection is known (the
// catalog was unreachable at start) it fails with cart.ErrUnavailable.
func (l *Live) GetCart(ctx context.Context, userID string) (projection.CartDoc, bool, error) {
	for {
		st := l.cur.Load()
		if st == nil {
			return projection.CartDoc{}, false, ErrNotOpen
		}
		st.mu.RLock()
		if st.retired {
			st.mu.RUnlock()
			continue // the pointer moved on before st was retired
		}
		d, ok, err := st.store.GetCart(ctx, userID)
		st.mu.RUnlock()
		return d, ok, err
	}
}

// Collection returns the name of the active carts collection; empty until
// it is known.
func (l *Live) Collection() string {
	if st := l.cur.Load(); st != nil {
		return st.name
	}
	return ""
}

// Progress is the live projector's progress (zero before it starts). On a
// replica that does not hold the projector lease it is the read model's
// progress as seen from its stored checkpoint and the head of the log
// (checkpoint, caught up, lag), since its GetCart answers are only as
// fresh as the holder's projection.
func (l *Live) Progress() projection.Progress {
	if l.cfg.Lease != nil && !l.Active() {
		return l.standby.snapshot()
	}
	p := l.last.Load()
	if p == nil {
		return projection.Progress{}
	}
	return p.Progress()
}

// Run learns the active collection (retrying while the catalog cannot be
// read), runs the live projector on it (with a Lease: while it holds the
// lease) and follows switches recorded in the catalog, until ctx ends;
// then it stops the projector, which flushes its batch and checkpoint, and
// releases the lease. It returns nil.
func (l *Live) Run(ctx context.Context) error {
	name, ok := l.resolve(ctx)
	if !ok {
		return nil
	}
	l.mu.Lock()
	l.runCtx = ctx
	l.swapLocked(name)
	l.startLocked()
	l.mu.Unlock()
	l.log.Info("read model open", "collection", name)
	var bg sync.WaitGroup
	if l.cfg.Lease != nil {
		l.log.Info("projector runs while this replica holds the lease", "holder", l.cfg.Lease.ID(), "lease_ttl", l.cfg.LeaseTTL)
		bg.Go(func() { l.lead(ctx) })
		bg.Go(func() { l.watch(ctx) })
		bg.Go(func() { l.followStandby(ctx) })
	}

	t := time.NewTicker(l.cfg.FollowInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			bg.Wait() // no acquiring while the projector stops
			l.mu.Lock()
			l.stopLocked()
			l.runCtx = nil
			l.mu.Unlock()
			if l.cfg.Lease != nil {
				l.releaseLease(ctx)
			}
			return nil
		case <-t.C:
			l.follow(ctx)
		}
	}
}

// resolve reads the active collection's name, retrying with capped backoff.
func (l *Live) resolve(ctx context.Context) (string, bool) {
	backoff := resolveMinBackoff
	for {
		name, err := l.cfg.Catalog.Active(ctx)
		if err == nil {
			return name, true
		}
		l.log.Warn("cannot read the active carts collection; retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", false
		case <-t.C:
		}
		backoff = min(2*backoff, resolveMaxBackoff)
	}
}

// follow switches to the collection the catalog names, if another replica
// switched it. A rebuild of this process holds the switch itself.
func (l *Live) follow(ctx context.Context) {
	l.mu.Lock()
	gen := l.switches
	l.mu.Unlock()
	name, err := l.cfg.Catalog.Active(ctx)
	if err != nil {
		l.log.Debug("cannot read the active carts collection", "err", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// A switch since the read (a rebuild of this process) makes the read
	// out of date: acting on it would switch back to a retired collection.
	if l.held || l.runCtx == nil || gen != l.switches || name == l.Collection() {
		return
	}
	l.log.Info("read model switched elsewhere; following", "from", l.Collection(), "to", name)
	l.stopLocked()
	l.swapLocked(name)
	l.startLocked()
}

// swapLocked makes readers use the named collection and retires the
// previous one once the reads in flight on it are done.
func (l *Live) swapLocked(name string) {
	old := l.cur.Swap(&Active{name: name, store: l.cfg.Open(name)})
	l.switches++
	if n := l.cfg.Projection.Notifier; n != nil {
		// Waiters for a version read again: the new collection may hold it
		// already, and no projector will announce it again.
		n.WakeAll()
	}
	if old != nil {
		old.mu.Lock()
		old.retired = true
		old.mu.Unlock()
	}
}

// startLocked starts the live projector on the active collection, unless
// Run is not running (not started, or shutting down) or another replica
// holds the lease.
func (l *Live) startLocked() {
	if l.runCtx == nil || l.runCtx.Err() != nil || l.stopProj != nil || !l.active.Load() {
		return
	}
	st := l.cur.Load()
	cfg := l.cfg.Projection
	cfg.Name, cfg.Store = st.name, st.store
	if l.cfg.OpenFenced != nil && l.cfg.Lease != nil {
		cfg.Store = l.cfg.OpenFenced(st.name)
	}
	p, err := projection.New(cfg)
	if err != nil { // cannot happen: NewLive checked the template
		l.log.Error("cannot start the live projector", "collection", st.name, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(l.runCtx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx) // returns only when stopped; failures are retried inside
	}()
	l.proj, l.stopProj, l.projDone = p, cancel, done
	l.last.Store(p)
}

// stopLocked stops the live projector and waits until it has flushed.
func (l *Live) stopLocked() {
	if l.stopProj == nil {
		return
	}
	l.stopProj()
	<-l.projDone
	l.stopProj, l.projDone = nil, nil
}

// Hold stops the live projector for a rebuild's switch and keeps it (and
// following) stopped until Release. It returns the stopped projector's
// progress, whose LastEvent the rebuild's projector must pass.
func (l *Live) Hold() (projection.Progress, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runCtx == nil || l.cur.Load() == nil {
		return projection.Progress{}, fmt.Errorf("read model not running: %w", cart.ErrUnavailable)
	}
	if !l.active.Load() {
		// The lease was lost since the operation started: switching now
		// would race the new holder's projector.
		return projection.Progress{}, fmt.Errorf("hold the live projector: %w", ErrNotHolder)
	}
	l.stopLocked()
	l.held = true
	if l.proj == nil {
		return projection.Progress{}, nil
	}
	return l.proj.Progress(), nil
}

// Release ends a hold: readers switch to the named collection if it is not
// the current one, and the live projector starts again on it from that
// collection's checkpoint.
func (l *Live) Release(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = false
	if name != l.Collection() {
		l.swapLocked(name)
	}
	l.startLocked()
}

// Current returns the active collection and the live projector (nil if
// none has started).
func (l *Live) Current() (*Active, *projection.Projector) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur.Load(), l.proj
}

// Exclusive runs fn on the active collection while the live projector does
// not flush and the collection cannot be switched.
func (l *Live) Exclusive(ctx context.Context, fn func(ctx context.Context, store CartStore) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.cur.Load()
	if st == nil {
		return ErrNotOpen
	}
	run := func(ctx context.Context) error { return fn(ctx, st.store) }
	if l.proj == nil || l.stopProj == nil {
		return run(ctx) // no live projector to keep out
	}
	return l.proj.Exclusive(ctx, run)
}

// nopStore lets NewLive check the projector template without a collection.
type nopStore struct{ CartStore }

// Name is the collection's name, which is also its projector's checkpoint
// name.
func (a *Active) Name() string { return a.name }

// Pin returns the collection's store held against retirement until unpin
// is called, for a long read (a verification's scan) that must not land on
// a collection a switch is about to drop.
func (a *Active) Pin() (store CartStore, unpin func()) {
	a.mu.RLock()
	return a.store, a.mu.RUnlock
}

// Open returns the store of the named carts collection, for a rebuild or a
// verification that builds one beside the active collection.
func (l *Live) Open(carts string) CartStore { return l.cfg.Open(carts) }

// Catalog is where the active collection is recorded.
func (l *Live) Catalog() Catalog { return l.cfg.Catalog }

// Template is the projector configuration every projector of this read
// model starts from (a rebuild's and a verification's too), so that they
// decode and park exactly as the live one does.
func (l *Live) Template() projection.Config { return l.cfg.Projection }

// FollowInterval is how often a switch made elsewhere is noticed; a
// rebuild keeps the collection it retired for a while longer than that.
func (l *Live) FollowInterval() time.Duration { return l.cfg.FollowInterval }
