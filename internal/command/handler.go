package command

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/tracing"
)

// Defaults of Options.
const (
	DefaultMaxAttempts   = 10
	DefaultSnapshotEvery = 100
	DefaultWindowSize    = 100
	DefaultBackoff       = 5 * time.Millisecond
	maxBackoff           = 250 * time.Millisecond
)

// Limits of the free-text audit fields, so that one caller cannot bloat every
// event's metadata.
const (
	MaxReasonLength = 1024
	MaxHeaderLength = 256
)

// DefaultPrincipal is recorded when the envelope names nobody. The gRPC
// layer always passes the verified caller, so only a caller of the Handler
// that authenticates nobody (a test, a tool) records it.
const DefaultPrincipal = "anonymous"

// Options tune a Handler; the zero value means the defaults.
type Options struct {
	// MaxAttempts bounds load-decide-append rounds on concurrency conflicts.
	MaxAttempts int
	// SnapshotEvery writes a snapshot once the cart has this many events
	// more than its last snapshot; negative disables snapshots.
	SnapshotEvery int
	// WindowSize is how many of a cart's recent commands are recognised
	// when resent with the same command ID.
	WindowSize int
	// Backoff is the base of the jittered exponential backoff between
	// attempts.
	Backoff time.Duration
	// CacheSize is how many carts' decided state (cart, version,
	// idempotency window) the Handler keeps in memory, least recently used
	// first out; 0 means DefaultCacheSize, negative disables the cache (every
	// command then loads its cart from the snapshot and the events after it).
	CacheSize int
	// Log receives conflicts (debug) and failed snapshot writes (warn).
	Log *slog.Logger
	// Now is the clock of the metadata's time; nil means time.Now.
	Now func() time.Time
	// Catalog prices AddItem and CheckoutCart (see pricing.go); without
	// one those commands fail with ErrNoCatalog.
	Catalog Catalog
	// Observer, if set, is told how each command ended and of every
	// concurrency conflict (metrics).
	Observer Observer
	// TracerProvider receives the spans of each command's load, decide and
	// append (see tracing.go); nil records none.
	TracerProvider trace.TracerProvider
	// PresumeNew decides a command on a cart that is not cached as if the
	// cart were new, and appends with "no stream" expected: the store
	// arbitrates, as it does for a cache that fell behind. A new cart then
	// costs one round trip (the append) instead of three; a cart that
	// exists costs a refused append more before it is loaded, once per
	// instance while it stays cached. Commands that a new cart refuses or
	// ignores (RemoveItem, ClearCart, ...) load the cart before answering,
	// as any not-fresh state does.
	PresumeNew bool
}

// Handler executes commands against carts. It caches the state of recent
// carts, but the event log stays the truth: every write is an append at the
// version decided on, so any number of instances may run, each with its own
// cache, and a cache that fell behind is found out by the append and caught
// up from the events it missed.
type Handler struct {
	store  EventStore
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	cache  *stateCache
	locks  *userLocks
	tracer trace.Tracer
}

// NewHandler builds a Handler on store.
func NewHandler(store EventStore, opts Options) *Handler {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.SnapshotEvery == 0 {
		opts.SnapshotEvery = DefaultSnapshotEvery
	}
	if opts.WindowSize <= 0 {
		opts.WindowSize = DefaultWindowSize
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	h := &Handler{store: store, opts: opts, log: opts.Log, now: opts.Now,
		cache: newStateCache(opts.CacheSize), locks: newUserLocks(),
		tracer: tracing.OrNoop(opts.TracerProvider).Tracer(tracerName)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// Envelope is what comes with a command besides its payload: whose cart, the
// caller's concurrency and idempotency controls, and the audit trail.
type Envelope struct {
	UserID string
	// CommandID is a UUID chosen by the caller to make retries safe; empty
	// means the server makes one up and nothing is deduplicated.
	CommandID string
	// ExpectedVersion, when set, makes the command fail with
	// ErrVersionMismatch unless the cart is at exactly this version.
	ExpectedVersion *int64
	// Principal is the verified caller; OnBehalfOf the user a service
	// acted for (empty when the user acted).
	Principal     string
	OnBehalfOf    string
	CorrelationID string
	CausationID   string
	Reason        string
}

// Result is a command's response.
type Result struct {
	// Version is the cart's version after the command: the revision of its
	// last event, or the current version when it wrote nothing.
	Version int64
	// Checkout is what a CheckoutCart bought; nil for other commands.
	Checkout *cart.CartCheckedOut
	// Duplicate tells that the command ID was seen before and this is the
	// first attempt's response; nothing was written.
	Duplicate bool
}

// Handle executes cmd on env.UserID's cart: validate, take the cart from the
// cache or load it, recognise a resent command, check the caller's expected
// version, decide, append at the version decided on; on a concurrency
// conflict read the events written since, and decide again, up to
// Options.MaxAttempts times. Commands on one cart wait for each other (see
// userLocks). For a CheckoutCart the checkout ID is derived from the command
// ID (any CheckoutID in cmd is replaced).
func (h *Handler) Handle(ctx context.Context, env Envelope, cmd cart.Command) (res Result, err error) {
	defer func() { h.opts.Observer.CommandDone(commandName(cmd), Outcome(err)) }()
	dedupe := env.CommandID != ""
	if !dedupe {
		env.CommandID = uuid.NewString()
	}
	if env.Principal == "" {
		env.Principal = DefaultPrincipal
	}
	if env.CorrelationID == "" {
		env.CorrelationID = env.CommandID
	}
	if c, ok := cmd.(cart.CheckoutCart); ok {
		c.CheckoutID = CheckoutID(env.CommandID)
		cmd = c
	}
	if err := validate(env, cmd); err != nil {
		return Result{}, err
	}
	meta := cart.Metadata{
		CommandID:     env.CommandID,
		CommandType:   cmd.Name(),
		CommandHash:   Fingerprint(env.UserID, cmd),
		CorrelationID: env.CorrelationID,
		CausationID:   env.CausationID,
		Principal:     env.Principal,
		OnBehalfOf:    env.OnBehalfOf,
		Reason:        env.Reason,
	}
	unlock, err := h.locks.lock(ctx, env.UserID)
	if err != nil {
		return Result{}, fmt.Errorf("%s: waiting for the cart: %w", cmd.Name(), err)
	}
	defer unlock()
	res, st, err := h.handle(ctx, env, cmd, meta, dedupe, h.cache.take(env.UserID))
	h.cache.put(env.UserID, st)
	return res, err
}

// handle runs the attempts of one command on st, the cached state (nil: not
// cached). It returns, besides the outcome, the state to cache: the cart as
// the store has it after the command, or nil when that is in doubt (an
// error that may or may not have written, an undecodable event, ...), which
// leaves the next command to load the cart afresh.
//
// A cached state may be behind the stream (another instance wrote). Writing
// on it is safe, since the append is at the cached version and fails if the
// stream moved on; answering without writing is not, so before a command
// ends without an append (a rule refused it, it changes nothing, the
// caller's expected version is ahead) the events after the cached version
// are read once, and the command decided again if there were any.
func (h *Handler) handle(ctx context.Context, env Envelope, cmd cart.Command, meta cart.Metadata, dedupe bool, st *state) (Result, *state, error) {
	fresh := false    // st is known to be the stream's latest state
	presumed := false // st is an empty cart presumed new, not read from the store
	switch {
	case st == nil && h.opts.PresumeNew:
		// Not cached: decide as if the cart were new and append with "no
		// stream". For a new cart that is the whole command, one round trip
		// instead of three (snapshot, events, append); for a cart that
		// exists, the append is refused and the cart loaded below, which
		// costs one refused append more, once per cart and instance.
		st, presumed = newState(h.opts.WindowSize), true
		_, span := h.startLoad(ctx, loadPresumedNew)
		endSpan(span, st, nil)
	case st == nil:
		if err := h.loadFresh(ctx, env.UserID, &st); err != nil {
			return Result{}, nil, fmt.Errorf("%s: %w", cmd.Name(), err)
		}
		fresh = true
	default:
		_, span := h.startLoad(ctx, loadCache)
		endSpan(span, st, nil)
	}
	// catchUp reads what was written after st and marks st fresh; a
	// presumed-new cart is loaded whole instead (snapshot and tail).
	catchUp := func() error {
		if presumed {
			presumed = false
			if err := h.loadFresh(ctx, env.UserID, &st); err != nil {
				return fmt.Errorf("%s: %w", cmd.Name(), err)
			}
			fresh = true
			return nil
		}
		lctx, span := h.startLoad(ctx, loadCatchUp)
		err := h.catchUp(lctx, env.UserID, st)
		endSpan(span, st, err)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd.Name(), err)
		}
		fresh = true
		return nil
	}
	for attempt := 1; ; {
		if dedupe {
			// A command in the window is in the stream for good: the answer
			// holds however far behind st is.
			if prev, ok := st.window.lookup(env.CommandID); ok {
				res, err := h.duplicate(ctx, env, cmd, meta.CommandHash, prev)
				return res, st, err
			}
		}
		if env.ExpectedVersion != nil && *env.ExpectedVersion != st.version {
			// Versions only grow: an expected version below st's is stale
			// for sure; one above it may be the truth st has not seen yet.
			if fresh || *env.ExpectedVersion < st.version {
				return Result{}, st, fmt.Errorf("%s: expected version %d, cart is at %d: %w", cmd.Name(), *env.ExpectedVersion, st.version, ErrVersionMismatch)
			}
			if err := catchUp(); err != nil {
				return Result{}, nil, err
			}
			continue
		}
		events, priceErr, err := h.decide(ctx, st, cmd)
		if priceErr != nil {
			// The catalog failed (an outage): st is still what it was,
			// unless it was only presumed, which is nothing to keep.
			if presumed {
				return Result{}, nil, fmt.Errorf("%s: %w", cmd.Name(), priceErr)
			}
			return Result{}, st, fmt.Errorf("%s: %w", cmd.Name(), priceErr)
		}
		if (err != nil || len(events) == 0) && !fresh {
			if err := catchUp(); err != nil {
				return Result{}, nil, err
			}
			continue
		}
		if err != nil {
			return Result{}, st, fmt.Errorf("%s: %w", cmd.Name(), err)
		}
		if len(events) == 0 {
			return Result{Version: st.version}, st, nil
		}
		meta.Time = h.now().UTC()
		version, err := h.append(ctx, env.UserID, st.version, meta, events)
		if errors.Is(err, cart.ErrConcurrencyConflict) && presumed {
			// The cart was not new after all: no contention, just a load.
			h.log.DebugContext(ctx, "cart presumed new exists; loading it", "user_id", env.UserID, "command", cmd.Name())
			if err := catchUp(); err != nil {
				return Result{}, nil, err
			}
			continue
		}
		if errors.Is(err, cart.ErrConcurrencyConflict) && (!fresh || attempt < h.opts.MaxAttempts) {
			h.log.DebugContext(ctx, "concurrency conflict; deciding again", "user_id", env.UserID, "command", cmd.Name(), "attempt", attempt, "cached", !fresh)
			h.opts.Observer.Conflict(cmd.Name())
			// A cached state that was behind is no contention and no
			// attempt: catch up at once. Another writer that won on the
			// latest state is: wait a little, so that both do not collide
			// again in lockstep.
			if fresh {
				if err := h.backoff(ctx, attempt); err != nil {
					return Result{}, st, fmt.Errorf("%s: %w", cmd.Name(), err)
				}
				attempt++
			}
			if err := catchUp(); err != nil {
				return Result{}, nil, err
			}
			continue
		}
		if errors.Is(err, cart.ErrConcurrencyConflict) {
			h.opts.Observer.Conflict(cmd.Name())
			h.opts.Observer.RetriesExhausted(cmd.Name())
			// Refused, so nothing was written: st is behind but true.
			return Result{}, st, fmt.Errorf("%s: after %d attempts: %w", cmd.Name(), attempt, err)
		}
		if err != nil {
			// The append may have written (a lost response, a timeout): only
			// the stream can tell, so the next command loads it.
			return Result{}, nil, fmt.Errorf("%s: after %d attempts: %w", cmd.Name(), attempt, err)
		}
		if version != st.version+int64(len(events)) {
			// Not where this append should have put the events: trust
			// neither st nor a snapshot of it; the next command loads.
			h.log.WarnContext(ctx, "append answered an unexpected version; dropping the cached cart", "user_id", env.UserID, "version", version, "expected", st.version+int64(len(events)))
			return h.result(version, events), nil, nil
		}
		for _, e := range events {
			st.apply(st.version+1, e, meta)
		}
		h.maybeSnapshot(ctx, env.UserID, st)
		return h.result(version, events), st, nil
	}
}

// loadFresh loads userID's cart from the store (snapshot and tail) into *st,
// in a span of its own.
func (h *Handler) loadFresh(ctx context.Context, userID string, st **state) error {
	lctx, span := h.startLoad(ctx, loadStream)
	loaded, err := h.load(lctx, userID)
	endSpan(span, loaded, err)
	if err != nil {
		return err
	}
	*st = loaded
	return nil
}

// result is the response of a command that appended events up to version.
func (h *Handler) result(version int64, events []cart.Event) Result {
	res := Result{Version: version}
	if co, ok := events[len(events)-1].(cart.CartCheckedOut); ok {
		res.Checkout = &co
	}
	return res
}

// catchUp folds into st the events written after st.version: only the tail,
// never the snapshot again, since st already holds everything before it. On
// an error st may be half caught up and must not be used any more.
func (h *Handler) catchUp(ctx context.Context, userID string, st *state) error {
	err := h.store.LoadEvents(ctx, userID, st.version+1, func(rev int64, e cart.Event, m cart.Metadata) error {
		if rev != st.version+1 {
			return fmt.Errorf("event at revision %d after version %d", rev, st.version)
		}
		st.apply(rev, e, m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read cart after version %d: %w", st.version, err)
	}
	return nil
}

// duplicate answers a resent command from the window: the first attempt's
// response if it is the same command, ErrCommandIDReused if not.
func (h *Handler) duplicate(ctx context.Context, env Envelope, cmd cart.Command, hash string, prev windowEntry) (Result, error) {
	if prev.Hash != hash {
		return Result{}, fmt.Errorf("%s: command_id %s: %w", cmd.Name(), env.CommandID, ErrCommandIDReused)
	}
	res := Result{Version: prev.Version, Duplicate: true}
	if _, ok := cmd.(cart.CheckoutCart); ok {
		co, err := h.checkoutAt(ctx, env.UserID, prev.Version)
		if err != nil {
			return Result{}, fmt.Errorf("%s: resent: %w", cmd.Name(), err)
		}
		res.Checkout = &co
	}
	return res, nil
}

// errStop ends a read early once the wanted event was seen.
var errStop = errors.New("stop reading")

// checkoutAt reads back the checkout recorded at version, to answer a resent
// CheckoutCart with what the first attempt bought.
func (h *Handler) checkoutAt(ctx context.Context, userID string, version int64) (cart.CartCheckedOut, error) {
	var (
		co    cart.CartCheckedOut
		found bool
	)
	err := h.store.LoadEvents(ctx, userID, version, func(rev int64, e cart.Event, _ cart.Metadata) error {
		co, found = e.(cart.CartCheckedOut)
		if rev != version {
			found = false
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return cart.CartCheckedOut{}, err
	}
	if !found {
		return cart.CartCheckedOut{}, fmt.Errorf("no CartCheckedOut event at version %d", version)
	}
	return co, nil
}

// load reads the cart: from its snapshot when there is a usable one, plus
// the events after it. The snapshot's own last event is read again to check
// that the stream still holds it; if not, the snapshot is ignored.
func (h *Handler) load(ctx context.Context, userID string) (*state, error) {
	if h.opts.SnapshotEvery > 0 {
		st, err := h.loadFromSnapshot(ctx, userID)
		switch {
		case err == nil && st != nil:
			return st, nil
		case err != nil && !errors.Is(err, errSnapshotUnusable):
			return nil, err
		case err != nil:
			h.log.WarnContext(ctx, "ignoring cart snapshot; replaying the stream", "user_id", userID, "err", err)
		}
	}
	st := newState(h.opts.WindowSize)
	if err := h.store.LoadEvents(ctx, userID, 0, func(rev int64, e cart.Event, m cart.Metadata) error {
		st.apply(rev, e, m)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load cart: %w", err)
	}
	return st, nil
}

// loadFromSnapshot loads from the snapshot. It returns a nil state when
// there is no snapshot, and errSnapshotUnusable when there is one that
// cannot be trusted; either way the caller replays the stream.
func (h *Handler) loadFromSnapshot(ctx context.Context, userID string) (*state, error) {
	data, err := h.store.ReadSnapshot(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("load cart snapshot: %w", err)
	}
	if data == nil {
		return nil, nil
	}
	st, err := decodeSnapshot(data, userID, h.opts.WindowSize)
	if err != nil {
		return nil, err
	}
	checked := false
	err = h.store.LoadEvents(ctx, userID, st.version, func(rev int64, e cart.Event, m cart.Metadata) error {
		if !checked {
			if rev != st.version || m.CommandID != st.lastCommandID {
				return fmt.Errorf("%w: the stream holds another event at version %d", errSnapshotUnusable, st.version)
			}
			checked = true
			return nil
		}
		st.apply(rev, e, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load cart after snapshot: %w", err)
	}
	if !checked {
		return nil, fmt.Errorf("%w: the stream has no event at version %d", errSnapshotUnusable, st.version)
	}
	return st, nil
}

// maybeSnapshot writes a snapshot of st, the state after a command, once
// enough events piled up since the last one. It is best effort: the command
// already succeeded, so a failure is only logged (the next command tries
// again).
func (h *Handler) maybeSnapshot(ctx context.Context, userID string, st *state) {
	if h.opts.SnapshotEvery <= 0 || st.version-st.snapshotVersion < int64(h.opts.SnapshotEvery) {
		return
	}
	data, err := encodeSnapshot(userID, st)
	if err == nil {
		err = h.store.WriteSnapshot(ctx, userID, data)
	}
	if err != nil {
		h.log.WarnContext(ctx, "cart snapshot not written", "user_id", userID, "version", st.version, "err", err)
		return
	}
	st.snapshotVersion = st.version
}

// backoff waits before attempt+1, jittered so that writers that collided do
// not collide again in lockstep.
func (h *Handler) backoff(ctx context.Context, attempt int) error {
	d := min(h.opts.Backoff<<(attempt-1), maxBackoff)
	t := time.NewTimer(rand.N(d + 1)) // full jitter: spreads a burst of writers best
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkoutNamespace seeds checkout IDs. Never change it: a resent checkout
// would get another ID.
var checkoutNamespace = uuid.MustParse("0b8e6c52-7a3f-4d1e-8f0a-5c2b9d4e7a16")

// CheckoutID is the ID of the checkout made by command commandID, derived so
// that every attempt of the same command records the same checkout.
func CheckoutID(commandID string) string {
	return uuid.NewSHA1(checkoutNamespace, []byte(commandID)).String()
}

// Fingerprint identifies what a command asks for, so that a command ID sent
// again with a different command is told apart from a retry: SHA-256 over
// the command's name, the user and its canonical (JSON) payload, truncated
// to 128 bits. The checkout ID is left out: it is derived from the command
// ID, not chosen by the caller.
func Fingerprint(userID string, cmd cart.Command) string {
	if c, ok := cmd.(cart.CheckoutCart); ok {
		c.CheckoutID = ""
		cmd = c
	}
	payload, err := json.Marshal(cmd)
	if err != nil { // plain structs of strings and numbers: cannot happen
		payload = fmt.Appendf(nil, "%#v", cmd)
	}
	h := sha256.New()
	fmt.Fprintf(h, "cart.command.v1\x00%s\x00%s\x00", cmd.Name(), userID)
	h.Write(payload)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// validate reports every problem of the request at once, naming the fields
// as the API does.
func validate(env Envelope, cmd cart.Command) error {
	var v []cart.FieldViolation
	v = append(v, cart.ValidateID("user_id", env.UserID)...)
	if _, err := uuid.Parse(env.CommandID); err != nil {
		v = append(v, cart.FieldViolation{Field: "command_id", Description: "must be a UUID"})
	}
	if env.ExpectedVersion != nil && *env.ExpectedVersion < -1 {
		v = append(v, cart.FieldViolation{Field: "expected_version", Description: "must be -1 (no events yet) or a version"})
	}
	if len(env.Reason) > MaxReasonLength {
		v = append(v, cart.FieldViolation{Field: "reason", Description: fmt.Sprintf("must be at most %d bytes", MaxReasonLength)})
	}
	for _, h := range []struct{ name, value string }{
		{"x-principal", env.Principal}, {"x-correlation-id", env.CorrelationID}, {"x-causation-id", env.CausationID},
	} {
		if len(h.value) > MaxHeaderLength {
			v = append(v, cart.FieldViolation{Field: h.name, Description: fmt.Sprintf("must be at most %d bytes", MaxHeaderLength)})
		}
	}
	if err := cmd.Validate(); err != nil {
		var ve *cart.ValidationError
		if !errors.As(err, &ve) {
			return err
		}
		v = append(v, ve.Violations...)
	}
	if len(v) == 0 {
		return nil
	}
	return &cart.ValidationError{Violations: v}
}
