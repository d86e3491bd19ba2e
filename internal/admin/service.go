package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readside"
)

// ErrBusy is returned when another rebuild, verification or replay of
// this process is running: they change or compare the read model as a
// whole, so they run one at a time. The API answers FAILED_PRECONDITION.
var ErrBusy = errors.New("another read-model operation is running")

// ErrBadPageToken says a page token was not issued by this server for this
// listing's filter (INVALID_ARGUMENT), so that a client cannot page one
// user's parked events with a token of another listing.
var ErrBadPageToken = errors.New("invalid page_token")

// dropTimeout bounds cleaning up a collection after an operation ended.
const dropTimeout = 30 * time.Second

// Config configures a Service. Live, Parking and Events are required.
type Config struct {
	// Live is the read model in use; its projector template also drives
	// the projectors of rebuilds and verifications.
	Live *readside.Live
	// Parking is the parking lot (normally also Live's Parker).
	Parking ParkingLot
	// Events is the event log.
	Events EventLog
	// Retirements, if set, records replaced collections until they are
	// dropped; New then drops those a stopped process left behind.
	Retirements Retirements
	// Log receives progress and outcomes. Nil discards.
	Log *slog.Logger
	// ProgressInterval is how often progress is reported; 0 means
	// DefaultProgressInterval.
	ProgressInterval time.Duration
	// DropDelay is how long a rebuild keeps the previous collection after
	// switching, so that other replicas (which check the catalog every
	// FollowInterval) stop reading it first; 0 means twice Live's
	// FollowInterval.
	DropDelay time.Duration
}

// Service runs the read-model operations. It is safe for concurrent use;
// Close it before stopping Live.
type Service struct {
	cfg  Config
	log  *slog.Logger
	busy sync.Mutex // held for the length of a rebuild, verification or replay

	base   context.Context // ends at Close: running operations stop
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	ops    sync.WaitGroup
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	var errs []error
	if cfg.Live == nil {
		errs = append(errs, errors.New("live is required"))
	}
	if cfg.Parking == nil {
		errs = append(errs, errors.New("parking lot is required"))
	}
	if cfg.Events == nil {
		errs = append(errs, errors.New("event log is required"))
	}
	if cfg.ProgressInterval < 0 || cfg.DropDelay < 0 {
		errs = append(errs, errors.New("progress interval and drop delay must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("admin new: %w", err)
	}
	if cfg.ProgressInterval == 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.DropDelay == 0 {
		cfg.DropDelay = 2 * cfg.Live.FollowInterval()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, log: cfg.Log, base: base, cancel: cancel}
	if cfg.Retirements != nil {
		s.ops.Add(1)
		go func() {
			defer s.ops.Done()
			s.dropRetired(base, time.Now())
		}()
	}
	return s, nil
}

// dropRetired drops every recorded retired collection whose drop time has
// come, except the active one (a rebuild may have switched back to it),
// and forgets it. Failures are logged: the next start tries again.
func (s *Service) dropRetired(ctx context.Context, now time.Time) {
	retired, err := s.cfg.Retirements.Retired(ctx)
	if err != nil {
		s.log.Warn("cannot read the retired collections; they are dropped at a later start", "err", err)
		return
	}
	active, err := s.cfg.Live.Catalog().Active(ctx)
	if err != nil {
		s.log.Warn("cannot read the active collection; retired collections are dropped at a later start", "err", err)
		return
	}
	for name, after := range retired {
		if now.Before(after) {
			continue // the rebuild that retired it drops it, or the next start
		}
		if name != active {
			if err := s.cfg.Live.Catalog().Drop(ctx, name); err != nil {
				s.log.Warn("cannot drop a retired collection", "collection", name, "err", err)
				continue
			}
			s.log.Info("dropped a collection a rebuild had retired", "collection", name)
		}
		if err := s.cfg.Retirements.Forget(ctx, name); err != nil {
			s.log.Warn("cannot forget a dropped collection", "collection", name, "err", err)
		}
	}
}

// Close stops the running operation, if any, and waits until it has
// cleaned up (a rebuild not yet switched drops its collection and restarts
// the live projector where it was). Later operations fail as unavailable.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.ops.Wait()
}

// begin starts an exclusive operation: ctx ends when the caller's does or
// at Close. end must be called when the operation is over. It fails with
// readside.ErrNotHolder on a replica that does not hold the projector
// lease.
func (s *Service) begin(ctx context.Context) (_ context.Context, end func(), _ error) {
	if !s.busy.TryLock() {
		return nil, nil, ErrBusy
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.busy.Unlock()
		return nil, nil, fmt.Errorf("query-svc is shutting down: %w", cart.ErrUnavailable)
	}
	s.ops.Add(1)
	s.mu.Unlock()
	// With replicas, only the lease holder runs the live projector these
	// operations work beside (readside.ErrNotHolder names the holder).
	if err := s.cfg.Live.CheckHolder(ctx); err != nil {
		s.busy.Unlock()
		s.ops.Done()
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.base, cancel)
	return ctx, func() {
		stop()
		cancel()
		s.busy.Unlock()
		s.ops.Done()
	}, nil
}

// runProjector runs a projector of the template into the named collection
// until the returned stop is called; stop waits for its last flush. parked
// says whether it parks what it cannot apply (a rebuild) or only marks the
// carts stale (a verification, which must not change the parking lot).
func (s *Service) runProjector(name string, store readside.CartStore, parked bool) (*projection.Projector, func(), error) {
	cfg := s.cfg.Live.Template()
	cfg.Name, cfg.Store, cfg.Notifier = name, store, nil
	if !parked {
		cfg.Parker = nil
	}
	p, err := projection.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	return p, sync.OnceFunc(func() { cancel(); <-done }), nil
}

// dropQuietly drops a collection after an operation, whatever became of
// the operation's context, and logs a failure for operators to clean up.
func (s *Service) dropQuietly(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropTimeout)
	defer cancel()
	if err := s.cfg.Live.Catalog().Drop(ctx, name); err != nil {
		s.log.Warn("cannot drop a collection; drop it by hand", "collection", name, "err", err)
	}
}

// reached tells whether a stored checkpoint is at or past target; the zero
// target (an empty log) is always reached.
func reached(cp *eventlog.Position, target eventlog.Position) bool {
	if target == (eventlog.Position{}) {
		return true
	}
	return cp != nil && !cp.Less(target)
}

// collectionName names a fresh collection, e.g. carts_20261126_074301_123.
func collectionName(prefix string, t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%s_%s_%03d", prefix, t.Format("20060102_150405"), t.Nanosecond()/1e6)
}
