package projection

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// start runs a projector in the background until the test ends.
func start(t *testing.T, cfg Config) *Projector {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = time.Millisecond
		cfg.MaxBackoff = 5 * time.Millisecond
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, p)
	return p
}

// run runs p in the background until the test ends.
func run(t *testing.T, p *Projector) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitFor waits, for at most 20 s, until the projector's progress satisfies cond.
func waitFor(t *testing.T, p *Projector, what string, cond func(Progress) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitUntil(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v (progress %+v)", what, err, p.Progress())
	}
}

// stored returns a condition: caught up with the checkpoint at pos or later.
func storedThrough(pos eventlog.Position) func(Progress) bool {
	return func(pr Progress) bool {
		return pr.CaughtUp && pr.Checkpoint != nil && !pr.Checkpoint.Less(pos)
	}
}

func assertDoc(t *testing.T, s *fakeStore, want CartDoc) {
	t.Helper()
	got, ok := s.doc(want.UserID)
	if !ok {
		t.Fatalf("no document for %s", want.UserID)
	}
	if got.Version != want.Version || !reflect.DeepEqual(got.Cart, want.Cart) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("document %s = version %d %+v at %v, want version %d %+v at %v",
			want.UserID, got.Version, got.Cart, got.UpdatedAt, want.Version, want.Cart, want.UpdatedAt)
	}
}

func noViolations(t *testing.T, s *fakeStore) {
	t.Helper()
	if _, v := s.snapshot(); len(v) > 0 {
		t.Errorf("store invariant violations: %v", v)
	}
}

// checkpointCovers fails a checkpoint saved before the documents of the
// events it covers were stored.
func checkpointCovers(evs []eventlog.Event) func(eventlog.Position, map[string]CartDoc) error {
	return func(pos eventlog.Position, docs map[string]CartDoc) error {
		for _, ev := range evs {
			if pos.Less(ev.Position) {
				continue
			}
			d, ok := docs[ev.UserID]
			if !ok || (d.Version < ev.Revision && !d.Stale) {
				return fmt.Errorf("checkpoint %v saved before %s@%d was stored", pos, ev.StreamID, ev.Revision)
			}
		}
		return nil
	}
}

func TestProjectorAppliesEvents(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	evs := []eventlog.Event{
		b.event("u1", add("p1", 1)),
		b.event("u2", add("p9", 3)),
		b.event("u1", add("p2", 2)),
		b.event("u1", add("p1", 1)),
		b.event("u1", cart.ItemQuantityChanged{ProductID: "p2", Quantity: 5}),
		b.event("u2", cart.CartCleared{}),
		b.event("u1", cart.ItemRemoved{ProductID: "p1"}),
	}
	log := newFakeLog()
	log.addEvents(evs...)
	store := newFakeStore()
	store.onCheckpoint = checkpointCovers(evs)
	n := NewNotifier()
	wokeWake, cancel := n.Wait("u1", 4)
	woke := wokeWake.C
	defer cancel()
	p := start(t, Config{Source: log, Store: store, Notifier: n})

	waitFor(t, p, "catch-up", storedThrough(evs[len(evs)-1].Position))
	for _, u := range []string{"u1", "u2"} {
		assertDoc(t, store, fold(t, evs, u))
	}
	select {
	case <-woke:
	default:
		t.Error("the notifier did not wake a waiter for u1 at version 4")
	}
	pr := p.Progress()
	if pr.EventsProcessed != int64(len(evs)) || pr.EventsApplied != int64(len(evs)) || pr.EventsParked != 0 {
		t.Errorf("progress = %+v, want %d processed and applied", pr, len(evs))
	}
	noViolations(t, store)

	// A live event after catch-up is applied too.
	live := b.event("u2", add("p3", 1))
	evs = append(evs, live)
	log.addEvents(live)
	waitFor(t, p, "live event", storedThrough(live.Position))
	assertDoc(t, store, fold(t, evs, "u2"))
}

func TestProjectorRedeliveryDoesNotDoubleCount(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	evs := []eventlog.Event{
		b.event("u1", add("p1", 1)),
		b.event("u1", add("p1", 2)),
		b.event("u2", add("p1", 1)),
		b.event("u1", add("p1", 4)),
	}
	log := newFakeLog()
	// The same events come twice in one subscription, as a buggy or
	// reconnecting source may deliver them.
	log.addEvents(evs...)
	log.addEvents(evs...)
	store := newFakeStore()
	// A previous run stored the documents but crashed before the checkpoint.
	for _, u := range []string{"u1", "u2"} {
		d := fold(t, evs[:3], u)
		store.docs[u] = d
	}
	p := start(t, Config{Source: log, Store: store})
	waitFor(t, p, "catch-up", storedThrough(evs[len(evs)-1].Position))
	for _, u := range []string{"u1", "u2"} {
		assertDoc(t, store, fold(t, evs, u))
	}
	if got := fold(t, evs, "u1").Cart.Items[0].Quantity; got != 7 {
		t.Fatalf("test setup: fold gives quantity %d, want 7", got)
	}
	pr := p.Progress()
	if pr.EventsApplied != 1 || pr.EventsSkipped != int64(2*len(evs)-1) {
		t.Errorf("progress = %+v, want 1 applied and %d skipped", pr, 2*len(evs)-1)
	}
}

func TestProjectorParksWhatItCannotApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// poison makes the bad event for u1; the events before and after it are fine.
		poison    func(b *eventBuilder) eventlog.Event
		wantCause func(error) bool
	}{
		{
			name:      "unknown type",
			poison:    func(b *eventBuilder) eventlog.Event { return b.raw("u1", "CouponApplied", []byte(`{"code":"X"}`)) },
			wantCause: func(err error) bool { return errors.Is(err, cart.ErrUnknownEventType) },
		},
		{
			name:   "bad JSON",
			poison: func(b *eventBuilder) eventlog.Event { return b.raw("u1", cart.TypeItemAdded, []byte(`{"product_id":`)) },
			wantCause: func(err error) bool {
				var de *cart.DecodeError
				return errors.As(err, &de)
			},
		},
		{
			name: "bad metadata",
			poison: func(b *eventBuilder) eventlog.Event {
				ev := b.event("u1", add("p1", 1))
				ev.Metadata = []byte("not json")
				return ev
			},
			wantCause: func(err error) bool {
				var de *cart.DecodeError
				return errors.As(err, &de)
			},
		},
		{
			name: "gap",
			poison: func(b *eventBuilder) eventlog.Event {
				b.rev["u1"]++ // a revision missing from the log
				return b.event("u1", add("p1", 1))
			},
			wantCause: func(err error) bool {
				var ge *GapError
				return errors.As(err, &ge) && ge.DocVersion == 1 && ge.Revision == 3
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBuilder(t)
			good := []eventlog.Event{b.event("u1", add("p1", 1)), b.event("u1", add("p2", 1))}
			bad := tt.poison(b)
			after := b.event("u1", add("p3", 1))
			other := b.event("u2", add("p1", 1))
			evs := append(good, bad, after, other)
			log := newFakeLog()
			log.addEvents(evs...)
			store := newFakeStore()
			store.onCheckpoint = checkpointCovers(evs)
			parker := &fakeParker{failN: 1} // the first try fails: the batch is retried
			p := start(t, Config{Source: log, Store: store, Parker: parker})

			waitFor(t, p, "catch-up", storedThrough(other.Position))
			d, _ := store.doc("u1")
			if d.Version != 1 || !d.Stale || d.StaleReason == "" {
				t.Errorf("u1 = version %d stale %v (%q), want version 1, stale with a reason", d.Version, d.Stale, d.StaleReason)
			}
			assertDoc(t, store, fold(t, good, "u1"))
			assertDoc(t, store, fold(t, evs, "u2"))
			if d, _ := store.doc("u2"); d.Stale {
				t.Error("u2 is stale; only u1 had a bad event")
			}
			parked := parker.events()
			if len(parked) < 2 || parked[0].ev.EventID != bad.EventID || parked[1].ev.EventID != after.EventID {
				t.Fatalf("parked %v, want the bad event then the one after it", parked)
			}
			if !tt.wantCause(parked[0].cause) {
				t.Errorf("parked cause = %v", parked[0].cause)
			}
			var ge *GapError
			if !errors.As(parked[1].cause, &ge) {
				t.Errorf("the event after the bad one was parked with %v, want a gap", parked[1].cause)
			}
			if pr := p.Progress(); pr.Reconnects < 1 || pr.EventsParked < 2 {
				t.Errorf("progress = %+v, want a retry after the parking lot failed and 2 parked", pr)
			}
			noViolations(t, store)
		})
	}
}

func TestProjectorBatchesAndStoresCheckpointAfterDocuments(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	var evs []eventlog.Event
	for i := range 10 {
		evs = append(evs, b.event(fmt.Sprintf("u%d", i%3), add("p1", 1)))
	}
	log := newFakeLog()
	log.addEvents(evs...)
	store := newFakeStore()
	store.onCheckpoint = checkpointCovers(evs)
	// A flush delay longer than any test: only the batch size and the
	// subscription's caught-up end batches.
	p := start(t, Config{Source: log, Store: store, BatchSize: 4, FlushDelay: time.Hour, CheckpointInterval: -1})
	waitFor(t, p, "catch-up", storedThrough(evs[len(evs)-1].Position))

	_, v := store.snapshot()
	if len(v) > 0 {
		t.Fatalf("violations: %v", v)
	}
	store.mu.Lock()
	saves, writes := store.saves, store.writeCalls
	store.mu.Unlock()
	want := []eventlog.Position{evs[3].Position, evs[7].Position, evs[9].Position}
	if !reflect.DeepEqual(saves, want) {
		t.Errorf("checkpoints saved at %v, want %v (batches of 4, then the rest at caught-up)", saves, want)
	}
	if writes != 3 {
		t.Errorf("%d document writes, want one per batch (3)", writes)
	}
}

func TestProjectorStoresServerCheckpoints(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	log := newFakeLog()
	log.checkpointEvery = 3
	for range 7 {
		log.add(b.hidden())
	}
	// A system record of a cart stream is ignored but passes its position on.
	sys := b.raw("u1", "$metadata", []byte(`{}`))
	log.addEvents(sys)
	store := newFakeStore()
	p := start(t, Config{Source: log, Store: store})
	waitFor(t, p, "catch-up", storedThrough(sys.Position))
	if _, ok := store.doc("u1"); ok {
		t.Error("a system event created a cart document")
	}
	if pr := p.Progress(); pr.EventsProcessed != 0 {
		t.Errorf("progress = %+v, want no events processed", pr)
	}
	store.mu.Lock()
	saves := store.saves
	store.mu.Unlock()
	if len(saves) < 2 || saves[0] != log.recs[2].ev.Position {
		t.Errorf("checkpoints saved at %v, want the server's checkpoints (first at %v)", saves, log.recs[2].ev.Position)
	}
}

func TestProjectorResubscribesAfterDrop(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	var evs []eventlog.Event
	for i := range 12 {
		evs = append(evs, b.event(fmt.Sprintf("u%d", i%2), add(fmt.Sprintf("p%d", i%4), 1)))
	}
	log := newFakeLog()
	log.addEvents(evs...)
	log.checkpointEvery = 4
	log.dropAfter[0] = 6 // mid-batch: 5 events and a checkpoint delivered
	log.dropAfter[1] = 2
	store := newFakeStore()
	store.onCheckpoint = checkpointCovers(evs)
	p := start(t, Config{Source: log, Store: store, FlushDelay: time.Hour})
	waitFor(t, p, "catch-up", storedThrough(evs[len(evs)-1].Position))

	for _, u := range []string{"u0", "u1"} {
		assertDoc(t, store, fold(t, evs, u))
	}
	subs := log.subscriptions()
	if len(subs) != 3 || subs[0] != nil || subs[1] == nil || *subs[1] != evs[3].Position {
		t.Errorf("subscribed from %v, want start, then the stored checkpoint %v, then again", subs, evs[3].Position)
	}
	if pr := p.Progress(); pr.Reconnects != 2 || pr.LastError == "" {
		t.Errorf("progress = %+v, want 2 reconnects", pr)
	}
	noViolations(t, store)
}

func TestProjectorSurvivesStoreOutage(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	var evs []eventlog.Event
	for i := range 6 {
		evs = append(evs, b.event(fmt.Sprintf("u%d", i%2), add("p1", 1)))
	}
	log := newFakeLog()
	log.addEvents(evs[:3]...)
	store := newFakeStore()
	store.onCheckpoint = checkpointCovers(evs)
	p := start(t, Config{Source: log, Store: store})
	waitFor(t, p, "first events", storedThrough(evs[2].Position))

	// The store goes away: every operation fails for a while.
	failures := 0
	store.mu.Lock()
	store.fail = func(op string) error {
		if failures < 7 {
			failures++
			return fmt.Errorf("%s: %w", op, cart.ErrUnavailable)
		}
		return nil
	}
	store.mu.Unlock()
	log.addEvents(evs[3:]...)
	waitFor(t, p, "recovery", storedThrough(evs[len(evs)-1].Position))
	for _, u := range []string{"u0", "u1"} {
		assertDoc(t, store, fold(t, evs, u))
	}
	if pr := p.Progress(); pr.Reconnects < 1 {
		t.Errorf("progress = %+v, want reconnects", pr)
	}
	noViolations(t, store)
}

func TestProjectorReappliesOverAnotherWriter(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	evs := []eventlog.Event{
		b.event("u1", add("p1", 1)),
		b.event("u1", add("p2", 1)),
		b.event("u1", add("p1", 1)),
		b.event("u1", cart.ItemRemoved{ProductID: "p2"}),
	}
	log := newFakeLog()
	log.addEvents(evs...)
	store := newFakeStore()
	// Another replica stores the first two events between our read and our
	// write: our insert conflicts, and the last two events are ours to apply.
	once := false
	store.beforeWrite = func(docs map[string]CartDoc) {
		if !once {
			once = true
			docs["u1"] = fold(t, evs[:2], "u1")
		}
	}
	n := NewNotifier()
	wokeWake, cancel := n.Wait("u1", 3)
	woke := wokeWake.C
	defer cancel()
	p := start(t, Config{Source: log, Store: store, Notifier: n})
	waitFor(t, p, "catch-up", storedThrough(evs[len(evs)-1].Position))
	assertDoc(t, store, fold(t, evs, "u1"))
	select {
	case <-woke:
	default:
		t.Error("waiter for version 3 not woken")
	}
}

func TestProjectorFlushesOnShutdown(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	evs := []eventlog.Event{b.event("u1", add("p1", 1)), b.event("u1", add("p1", 1))}
	log := newFakeLog()
	store := newFakeStore()
	p, err := New(Config{Source: log, Store: store, FlushDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-log.blocked // caught up on the empty log
	log.addEvents(evs...)
	<-log.blocked // both events read: they are in the batch or about to be
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	assertDoc(t, store, fold(t, evs, "u1"))
	if cp, _ := store.LoadCheckpoint(context.Background(), DefaultName); cp == nil || *cp != evs[1].Position {
		t.Errorf("checkpoint = %v, want %v", cp, evs[1].Position)
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without source and store succeeded")
	}
	if _, err := New(Config{Source: newFakeLog(), Store: newFakeStore(), BatchSize: -1}); err == nil {
		t.Fatal("New with a negative batch size succeeded")
	}
}
