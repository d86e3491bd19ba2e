package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/tracing"
)

// Defaults of Config; they suit FerretDB/SQLite (a few hundred writes a
// second) as well as MongoDB.
const (
	DefaultName       = "carts"
	DefaultBatchSize  = 100
	DefaultFlushDelay = 10 * time.Millisecond
	// DefaultCheckpointInterval spaces checkpoint writes while events keep
	// coming: a checkpoint costs a write like the documents', so one per
	// flush would double a busy projector's writes. Short, since replicas
	// without the lease learn progress (and answer min_version) from it.
	DefaultCheckpointInterval = 100 * time.Millisecond
	DefaultMinBackoff         = 100 * time.Millisecond
	DefaultMaxBackoff         = 5 * time.Second
	// shutdownFlushTimeout bounds the last flush when Run's context ends.
	shutdownFlushTimeout = 5 * time.Second
	// maxConflictRounds bounds how often one batch re-reads documents that
	// other writers moved on before the batch fails (and is retried).
	maxConflictRounds = 5
	// prefetch is how many messages the subscription may read ahead of a
	// flush in progress.
	prefetch = 256
)

// Config configures a Projector. Source and Store are required.
type Config struct {
	// Name identifies the projector's checkpoint. Two projectors sharing a
	// checkpoints collection (e.g. the live one and a rebuild into a fresh
	// carts collection) need different names. Default DefaultName.
	Name   string
	Source Source
	Store  Store
	// Parker receives events that cannot be applied (after the projector
	// has logged them at Error level and marked their carts stale). Nil
	// means no parking lot: log and mark stale only.
	Parker Parker
	// Notifier, if set, is told each cart's version after every flush.
	Notifier *Notifier
	// Decode turns stored events into domain events; nil means
	// cart.Unmarshal. Events it refuses are parked.
	Decode Decoder
	// Log receives progress and failures. Nil discards.
	Log *slog.Logger
	// BatchSize is the most events held in memory before a flush.
	BatchSize int
	// FlushDelay bounds how long an event waits in a batch before it is
	// flushed while catching up. Once caught up, an event is flushed as soon
	// as no other message is waiting.
	FlushDelay time.Duration
	// CheckpointInterval spaces the checkpoint writes: a flush stores the
	// checkpoint only if the last one is this old, and one left behind is
	// stored by a timer once it is due, so it never trails the documents
	// for longer; the end of catch-up and a stop always store it. Reads
	// are not held up (they wait for documents, not checkpoints); a
	// checkpoint that lags only means more redelivery after a crash,
	// which the version guard absorbs, and a replica without the lease
	// learning progress that much later. Default
	// DefaultCheckpointInterval; negative: every flush stores it.
	CheckpointInterval time.Duration
	// MinBackoff and MaxBackoff bound the waits between reconnects, which
	// double after each failure that made no progress.
	MinBackoff, MaxBackoff time.Duration
	// Observer, if set, is told of every flush and reconnect (metrics).
	Observer Observer
	// HeadInterval is how often the head of the log is read for the lag
	// when Source implements HeadSource. Default DefaultHeadInterval;
	// negative: never (the lag then only counts what was delivered).
	HeadInterval time.Duration
	// TracerProvider receives a span per flush and per event flushed, the
	// latter linked to the command that wrote the event (see tracing.go);
	// nil records none.
	TracerProvider trace.TracerProvider
	// CacheBytes bounds (by an estimate of their size in memory) the
	// stored documents the projector remembers after writing or reading
	// them, so that a cart's next event is applied without reading its
	// document again. 0 means DefaultCacheBytes; negative turns the cache
	// off. It is emptied whenever the projector subscribes again and by
	// Exclusive.
	CacheBytes int
}

// Progress is how far a projector has come, for health checks and logs.
type Progress struct {
	// Checkpoint is the last position stored (nil: none yet).
	Checkpoint *eventlog.Position
	// LastEvent is the position of the last cart event the projector has
	// sent to the store since start (nil: none): the read model holds no
	// effect of any later event, even if a write failed for the projector
	// but landed, or the checkpoint after it could not be stored. Unlike
	// Checkpoint it is always the position of a cart event, which another
	// projector of the same log is sure to reach: a rebuild waits for its
	// own checkpoint to pass the stopped live projector's LastEvent before
	// it switches readers over.
	LastEvent *eventlog.Position
	// EventsProcessed counts events flushed since start (applied, skipped
	// as redelivered, or parked).
	EventsProcessed int64
	// EventsApplied counts events that changed a document.
	EventsApplied int64
	// EventsSkipped counts redelivered events that a document already reflected.
	EventsSkipped int64
	// EventsParked counts events handed to the Parker.
	EventsParked int64
	// CaughtUp is true once the current subscription has delivered every
	// event that existed when it started, and everything up to there is stored.
	CaughtUp bool
	// Reconnects counts subscriptions that failed and were restarted.
	Reconnects int64
	// LastError is the error of the last failed subscription, empty if none.
	LastError string

	// LagEvents is how many cart events the read model is known not to
	// hold: those delivered but not yet covered by a stored checkpoint,
	// plus one when the head of the log lies beyond everything delivered
	// (positions cannot count the events in between, so it is a lower
	// bound while a backlog has not been delivered yet).
	LagEvents int64
	// LagSince is when the oldest event the read model does not hold was
	// recorded; zero when nothing is known to be missing. When that event
	// has not been delivered yet (the subscription is down or still far
	// behind) it is estimated as the earlier of the head's time and the
	// last head read that found nothing missing. Lag(now) turns it into
	// the staleness.
	LagSince time.Time
	// Head is the newest cart event's position as last read (nil: never
	// read, or the Source cannot say).
	Head *eventlog.Position
	// HeadReadAt is when Head was read.
	HeadReadAt time.Time
}

// Projector keeps the read model up to date with the event log. Run it once;
// read Progress from any goroutine.
type Projector struct {
	cfg    Config
	log    *slog.Logger
	tracer trace.Tracer

	mu       sync.Mutex
	progress Progress
	lag      lagState
	now      func() time.Time // the clock of the lag; a seam for tests
	changed  chan struct{}    // closed and replaced on every progress update

	// flushMu is held for every flush, and by Exclusive, so that an
	// operator's change of a document never interleaves with a flush.
	flushMu sync.Mutex
	cache   *docCache // guarded by flushMu
	savedAt time.Time // when the checkpoint was last stored; only the run loop (which flushes) uses it
}

// New checks cfg, fills in defaults and returns a projector ready to Run.
func New(cfg Config) (*Projector, error) {
	var errs []error
	if cfg.Source == nil {
		errs = append(errs, errors.New("source is required"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("store is required"))
	}
	if cfg.BatchSize < 0 || cfg.FlushDelay < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		errs = append(errs, errors.New("batch size, flush delay and backoffs must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("projection new: %w", err)
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Parker == nil {
		cfg.Parker = nopParker{}
	}
	if cfg.Decode == nil {
		cfg.Decode = cart.Unmarshal
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.FlushDelay == 0 {
		cfg.FlushDelay = DefaultFlushDelay
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.HeadInterval == 0 {
		cfg.HeadInterval = DefaultHeadInterval
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	return &Projector{
		tracer:  tracing.OrNoop(cfg.TracerProvider).Tracer(tracerName),
		cfg:     cfg,
		log:     cfg.Log.With("projector", cfg.Name),
		now:     time.Now,
		changed: make(chan struct{}),
		cache:   newDocCache(cfg.CacheBytes),
	}, nil
}

// Name is the projector's checkpoint name.
func (p *Projector) Name() string { return p.cfg.Name }

// Progress returns a snapshot of the projector's progress.
func (p *Projector) Progress() Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.progress
	p.lag.fill(&pr)
	if pr.Checkpoint != nil {
		c := *pr.Checkpoint
		pr.Checkpoint = &c
	}
	if pr.LastEvent != nil {
		e := *pr.LastEvent
		pr.LastEvent = &e
	}
	return pr
}

// WaitUntil blocks until cond holds for the projector's progress or ctx
// ends, e.g. to wait until the checkpoint passes a known head position.
func (p *Projector) WaitUntil(ctx context.Context, cond func(Progress) bool) error {
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if cond(p.Progress()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("projection wait: %w", ctx.Err())
		}
	}
}

func (p *Projector) update(f func(*Progress)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.progress)
	close(p.changed)
	p.changed = make(chan struct{})
}

// Run projects events until ctx ends, then flushes what it holds and
// returns nil. Failures of the subscription or the store never stop it: it
// subscribes again from the last stored checkpoint after a capped
// exponential backoff; the version guard makes the redelivery harmless.
func (p *Projector) Run(ctx context.Context) error {
	if hs, ok := p.cfg.Source.(HeadSource); ok && p.cfg.HeadInterval > 0 {
		hctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.followHead(hctx, hs)
		}()
		defer func() {
			stop()
			<-done
		}()
	}
	backoff := p.cfg.MinBackoff
	for {
		progressed, err := p.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			backoff = p.cfg.MinBackoff
		}
		p.update(func(pr *Progress) {
			pr.CaughtUp = false
			pr.Reconnects++
			pr.LastError = err.Error()
		})
		p.cfg.Observer.Resubscribed()
		// Jitter keeps replicas that failed together from retrying in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		p.log.Warn("projection interrupted; resubscribing from the last checkpoint", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, p.cfg.MaxBackoff)
	}
}

// received is a message or error read by the subscription's reader
// goroutine. A cart event arrives decoded (decoded set): decoding is CPU
// work the reader does while the loop waits on the store, not after.
type received struct {
	msg     eventlog.Message
	err     error
	entry   entry
	decoded bool
}

// runOnce runs one subscription from the stored checkpoint until it or the
// store fails, or ctx ends. progressed tells whether anything was stored.
func (p *Projector) runOnce(ctx context.Context) (progressed bool, err error) {
	// What the cache holds was learned before a failure or by an earlier
	// run: the documents may have moved since (another holder of the
	// collection, a write that failed for us but landed). Start afresh.
	p.flushMu.Lock()
	p.cache.reset()
	p.flushMu.Unlock()
	from, err := p.cfg.Store.LoadCheckpoint(ctx, p.cfg.Name)
	if err != nil {
		return false, fmt.Errorf("load checkpoint: %w", err)
	}
	p.update(func(pr *Progress) {
		pr.Checkpoint = from
		if from != nil {
			p.lag.stored(*from)
		}
	})
	sub, err := p.cfg.Source.Subscribe(ctx, from)
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	p.log.Info("projection subscribed", "from", positionAttr(from))

	// A reader goroutine keeps reading while a batch is flushed and lets
	// the loop below wait for a message and the flush timer at once.
	readCtx, stopReading := context.WithCancel(ctx)
	msgs := make(chan received, prefetch)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			m, err := sub.Next(readCtx)
			r := received{msg: m, err: err}
			if err == nil {
				p.update(func(*Progress) { p.lag.delivered(m) })
				if m.Event != nil && !isSystemEvent(*m.Event) {
					r.entry, r.decoded = decodeEntry(p.cfg.Decode, *m.Event), true
				}
			}
			select {
			case msgs <- r:
			case <-readCtx.Done():
				// Keep a message already read if there is room: the
				// shutdown drains it into the final flush.
				select {
				case msgs <- r:
				default:
				}
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		stopReading()
		_ = sub.Close()
		<-readerDone
	}()

	b := &batch{stored: from}
	live := false // caught up: every event is read-your-writes sensitive
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	// flush stores the batch; the checkpoint too when forced or when the
	// last one is CheckpointInterval old. A checkpoint left behind is
	// stored by the timer once it is due, so that an idle projector's
	// checkpoint never trails its documents for longer than that, and a
	// busy one writes it no more often.
	flush := func(ctx context.Context, force bool) error {
		n, err := p.flush(ctx, b, force)
		if n > 0 {
			progressed = true
		}
		if err == nil && b.dirty() {
			timer.Reset(max(p.cfg.CheckpointInterval-p.now().Sub(p.savedAt), 0))
		}
		return err
	}
	// shutdown stores what was received, so a restart redelivers less. It
	// also runs when a flush failed only because ctx ended in the middle of
	// it: that batch is still whole and must not be dropped.
	shutdown := func() (bool, error) {
		stopReading()
		<-readerDone // every message read is in msgs now
		p.drain(b, msgs)
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownFlushTimeout)
		defer cancel()
		if err := flush(fctx, true); err != nil {
			p.log.Warn("projection final flush failed; events will be redelivered", "err", err)
		}
		return progressed, ctx.Err()
	}
	for {
		select {
		case <-ctx.Done():
			return shutdown()
		case <-timer.C:
			if err := flush(ctx, false); err != nil {
				if ctx.Err() != nil {
					return shutdown()
				}
				return progressed, err
			}
		case r := <-msgs:
			if r.err != nil {
				if ctx.Err() != nil {
					// The subscription ended because we are stopping.
					return shutdown()
				}
				// The batch is dropped unflushed: what it held is redelivered.
				return progressed, fmt.Errorf("subscription: %w", r.err)
			}
			now, err := p.handle(b, r)
			if err != nil {
				return progressed, err
			}
			if r.msg.CaughtUp {
				live = true
			}
			// Live, nothing else waiting: flush now rather than after
			// FlushDelay, since a reader may be waiting for this event.
			// Events arriving during a flush queue up and form the next batch.
			if live && len(msgs) == 0 && len(b.entries) > 0 {
				now = true
			}
			if now {
				timer.Stop()
				// Caught up means stored up to there, checkpoint included.
				if err := flush(ctx, r.msg.CaughtUp); err != nil {
					if ctx.Err() != nil {
						return shutdown()
					}
					return progressed, err
				}
				if r.msg.CaughtUp {
					p.caughtUp()
				}
			} else if len(b.entries) == 1 || len(b.entries) == 0 && b.dirty() {
				// The first event of a batch waits at most FlushDelay; so
				// does a position that only a server checkpoint moved.
				timer.Reset(p.cfg.FlushDelay)
			}
		}
	}
}

// handle adds a message to the batch and says whether to flush now.
func (p *Projector) handle(b *batch, r received) (flushNow bool, err error) {
	m := r.msg
	switch {
	case m.Event != nil:
		b.advance(m.Event.Position)
		if isSystemEvent(*m.Event) {
			p.log.Debug("projection ignores a system event", "stream", m.Event.StreamID, "type", m.Event.Type)
			return false, nil
		}
		if m.Event.UserID == "" {
			return false, fmt.Errorf("event %s of stream %q has no user ID", m.Event.EventID, m.Event.StreamID)
		}
		en := r.entry
		if !r.decoded {
			en = decodeEntry(p.cfg.Decode, *m.Event)
		}
		b.entries = append(b.entries, en)
		return len(b.entries) >= p.cfg.BatchSize, nil
	case m.Checkpoint != nil:
		// The server's checkpoints (every few dozen events considered)
		// store progress through streams that are not carts; they need
		// not cut a batch of cart events short more often than the
		// checkpoint is due.
		b.advance(*m.Checkpoint)
		return p.checkpointDue(), nil
	case m.CaughtUp:
		return true, nil
	default:
		return false, nil
	}
}

// drain adds the messages already read ahead to the batch, for the last
// flush before Run returns.
func (p *Projector) drain(b *batch, msgs <-chan received) {
	for {
		select {
		case r := <-msgs:
			if r.err != nil {
				return
			}
			if _, err := p.handle(b, r); err != nil {
				return
			}
		default:
			return
		}
	}
}

func (p *Projector) caughtUp() {
	var first bool
	p.update(func(pr *Progress) {
		first = !pr.CaughtUp
		pr.CaughtUp = true
	})
	if first {
		pr := p.Progress()
		p.log.Info("projection caught up", "checkpoint", positionAttr(pr.Checkpoint),
			"events_processed", pr.EventsProcessed, "events_parked", pr.EventsParked)
	}
}

func positionAttr(p *eventlog.Position) string {
	if p == nil {
		return "start"
	}
	return p.String()
}
