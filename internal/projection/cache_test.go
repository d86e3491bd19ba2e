package projection

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// newFlusher returns a projector that the test flushes by hand, batch by
// batch, so that it decides what each flush holds.
func newFlusher(t *testing.T, store *fakeStore, cacheBytes int) (*Projector, func(evs ...eventlog.Event)) {
	t.Helper()
	p, err := New(Config{Source: newFakeLog(), Store: store, CacheBytes: cacheBytes})
	if err != nil {
		t.Fatal(err)
	}
	b := &batch{}
	return p, func(evs ...eventlog.Event) {
		t.Helper()
		for _, ev := range evs {
			b.advance(ev.Position)
			b.entries = append(b.entries, decodeEntry(cart.Unmarshal, ev))
		}
		if _, err := p.flush(context.Background(), b, true); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

// takeCalls returns what the store was asked since the last call.
func (s *fakeStore) takeCalls() (loads [][]string, writes [][]CartWrite) {
	s.mu.Lock()
	defer s.mu.Unlock()
	loads, writes = s.loads, s.writes
	s.loads, s.writes = nil, nil
	for _, l := range loads {
		slices.Sort(l)
	}
	return loads, writes
}

// writeSummary is what a test expects of one write.
type writeSummary struct {
	User     string
	Expected int64
	Version  int64
	Known    bool
}

func summarize(calls [][]CartWrite) [][]writeSummary {
	var out [][]writeSummary
	for _, ws := range calls {
		var call []writeSummary
		for _, w := range ws {
			exp := w.ExpectedVersion
			if w.Create {
				exp = -1
			}
			call = append(call, writeSummary{w.Doc.UserID, exp, w.Doc.Version, w.Known})
		}
		slices.SortFunc(call, func(a, b writeSummary) int {
			if a.User < b.User {
				return -1
			}
			return 1
		})
		out = append(out, call)
	}
	return out
}

// TestFlushReadsOnlyWhatItDoesNotKnow: carts whose first event ever is in
// the flush are inserted without a read; a cart the projector has not
// seen but that has a history (u3, written before this projector) is read
// in one LoadCarts; the next flush applies the carts it wrote to what it
// wrote and marks those writes Known; a cart's several events in one
// flush become one write.
func TestFlushReadsOnlyWhatItDoesNotKnow(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	store := newFakeStore()
	_, flush := newFlusher(t, store, 0)
	var evs []eventlog.Event
	step := func(batch ...eventlog.Event) ([][]string, [][]writeSummary) {
		evs = append(evs, batch...)
		flush(batch...)
		loads, writes := store.takeCalls()
		return loads, summarize(writes)
	}
	u3first := b.event("u3", add("p9", 1))
	evs = append(evs, u3first)
	store.docs["u3"] = fold(t, evs, "u3")

	loads, writes := step(b.event("u1", add("p1", 1)), b.event("u2", add("p2", 1)), b.event("u1", add("p3", 2)))
	if len(loads) != 0 {
		t.Errorf("first flush loaded %v, want nothing: both carts begin here", loads)
	}
	if want := [][]writeSummary{{{"u1", -1, 1, false}, {"u2", -1, 0, false}}}; !reflect.DeepEqual(writes, want) {
		t.Errorf("first flush wrote %+v, want %+v", writes, want)
	}

	loads, writes = step(b.event("u2", add("p2", 1)), b.event("u3", add("p1", 1)),
		b.event("u1", cart.ItemRemoved{ProductID: "p1"}), b.event("u1", add("p4", 1)), b.event("u1", add("p4", 1)))
	if want := [][]string{{"u3"}}; !reflect.DeepEqual(loads, want) {
		t.Errorf("second flush loaded %v, want only the cart it had not written: %v", loads, want)
	}
	if want := [][]writeSummary{{{"u1", 1, 4, true}, {"u2", 0, 1, true}, {"u3", 0, 1, false}}}; !reflect.DeepEqual(writes, want) {
		t.Errorf("second flush wrote %+v, want %+v", writes, want)
	}
	for _, u := range []string{"u1", "u2", "u3"} {
		assertDoc(t, store, fold(t, evs, u))
	}
	noViolations(t, store)
}

// TestFlushPresumesFirstEventsNew: a cart's first event is inserted
// without a read; if its document exists all the same (a redelivery after
// a crash before the checkpoint), the refused insert is a conflict, the
// document is read, and the events it already reflects count as skipped,
// not applied again.
func TestFlushPresumesFirstEventsNew(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	store := newFakeStore()
	p, flush := newFlusher(t, store, 0)
	evs := []eventlog.Event{b.event("u1", add("p1", 1)), b.event("u1", add("p1", 2)), b.event("u2", add("p2", 1))}
	store.docs["u1"] = fold(t, evs[:1], "u1") // projected before the crash
	flush(evs...)
	loads, writes := store.takeCalls()
	if want := [][]string{{"u1"}}; !reflect.DeepEqual(loads, want) {
		t.Errorf("loads = %v, want only u1, after its insert was refused: %v", loads, want)
	}
	want := [][]writeSummary{{{"u1", -1, 1, false}, {"u2", -1, 0, false}}, {{"u1", 0, 1, false}}}
	if got := summarize(writes); !reflect.DeepEqual(got, want) {
		t.Errorf("writes = %+v, want the presumed inserts, then u1 on its document: %+v", got, want)
	}
	for _, u := range []string{"u1", "u2"} {
		assertDoc(t, store, fold(t, evs, u))
	}
	if pr := p.Progress(); pr.EventsApplied != 2 || pr.EventsSkipped != 1 {
		t.Errorf("applied %d, skipped %d; want 2 and 1", pr.EventsApplied, pr.EventsSkipped)
	}
	noViolations(t, store)
}

// TestFlushRereadsWhatAnotherWriterMoved: a cart the cache knows at
// version 1 was moved to 2 by someone else; the cached write conflicts,
// the cart is read and only the event the other writer had not applied is
// applied on top of its document, once.
func TestFlushRereadsWhatAnotherWriterMoved(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	store := newFakeStore()
	p, flush := newFlusher(t, store, 0)
	evs := []eventlog.Event{
		b.event("u1", add("p1", 1)), b.event("u1", add("p1", 1)),
		b.event("u1", add("p1", 1)), b.event("u1", add("p2", 5)),
	}
	flush(evs[:2]...)
	// Another writer applies the third event (e.g. a replica that has not
	// noticed it lost the lease).
	store.mu.Lock()
	store.docs["u1"] = fold(t, evs[:3], "u1")
	store.mu.Unlock()
	store.takeCalls()

	flush(evs[2:]...)
	loads, writes := store.takeCalls()
	if want := [][]string{{"u1"}}; !reflect.DeepEqual(loads, want) {
		t.Errorf("loads after the conflict = %v, want %v", loads, want)
	}
	want := [][]writeSummary{{{"u1", 1, 3, true}}, {{"u1", 2, 3, false}}}
	if got := summarize(writes); !reflect.DeepEqual(got, want) {
		t.Errorf("writes = %+v, want the cached one, then one on the document read: %+v", got, want)
	}
	assertDoc(t, store, fold(t, evs, "u1")) // p1 at 3, not 4: no event applied twice
	if pr := p.Progress(); pr.EventsApplied != 3 || pr.EventsSkipped != 1 {
		t.Errorf("applied %d, skipped %d; want 3 and 1", pr.EventsApplied, pr.EventsSkipped)
	}
	// The document read is what the cache knows now.
	flush(b.event("u1", add("p3", 1)))
	if loads, _ := store.takeCalls(); len(loads) != 0 {
		t.Errorf("after re-reading, the next flush loaded %v again", loads)
	}
	noViolations(t, store)
}

// TestFlushReadsWhatTheCacheCannotDecide: a cached cart whose next event
// here is not the next revision (a gap, or a redelivery) is read, so that
// the store's document decides.
func TestFlushReadsWhatTheCacheCannotDecide(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	store := newFakeStore()
	_, flush := newFlusher(t, store, 0)
	flush(b.event("u1", add("p1", 1)))
	store.takeCalls()
	b.rev["u1"] = 1 // revision 1 is missing: the next event is 2
	flush(b.event("u1", add("p1", 1)))
	if loads, _ := store.takeCalls(); !reflect.DeepEqual(loads, [][]string{{"u1"}}) {
		t.Errorf("a gap after a cached version was decided without reading: loads %v", loads)
	}
	if d, _ := store.doc("u1"); !d.Stale || d.Version != 0 {
		t.Errorf("document = version %d stale %v, want version 0, stale", d.Version, d.Stale)
	}
}

// TestCacheIsBounded: with room for two carts, a flush of three keeps the
// two most recent; the third is read again next time.
func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	store := newFakeStore()
	one := docSize(fold(t, []eventlog.Event{b.event("sizer", add("p1", 1))}, "sizer"))
	p, flush := newFlusher(t, store, 2*one+one/2)
	flush(b.event("u1", add("p1", 1)), b.event("u2", add("p1", 1)), b.event("u3", add("p1", 1)))
	if n := p.cache.len(); n != 2 {
		t.Errorf("cache holds %d carts, want its bound 2", n)
	}
	store.takeCalls()
	flush(b.event("u1", add("p1", 1)), b.event("u3", add("p1", 1)))
	if loads, _ := store.takeCalls(); !reflect.DeepEqual(loads, [][]string{{"u1"}}) {
		t.Errorf("loads = %v, want only the evicted u1", loads)
	}
	if n := p.cache.len(); n != 2 {
		t.Errorf("cache holds %d carts, want its bound 2", n)
	}
}

// TestCacheOff: a negative CacheBytes reads every cart every flush but for
// its first event.
func TestCacheOff(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	store := newFakeStore()
	_, flush := newFlusher(t, store, -1)
	flush(b.event("u1", add("p1", 1)))
	flush(b.event("u1", add("p1", 1)))
	loads, writes := store.takeCalls()
	if !reflect.DeepEqual(loads, [][]string{{"u1"}}) {
		t.Errorf("loads = %v, want u1 read by the second flush (the first event needs no read)", loads)
	}
	if len(writes) != 2 || writes[1][0].Known {
		t.Errorf("writes = %+v, want two, none Known", summarize(writes))
	}
}

// TestExclusiveForgetsTheCache: an operator's rewrite of a document under
// Exclusive is what the next event applies to, not the projector's
// memory of the document before it.
func TestExclusiveForgetsTheCache(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	store := newFakeStore()
	p, flush := newFlusher(t, store, 0)
	flush(b.event("u1", add("p1", 1)))
	operator := CartDoc{UserID: "u1", Version: 0, Cart: cart.Cart{Items: []cart.Item{{ProductID: "fixed", Quantity: 7}}}}
	err := p.Exclusive(context.Background(), func(context.Context) error {
		store.mu.Lock()
		defer store.mu.Unlock()
		store.docs["u1"] = operator
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := b.event("u1", add("p2", 1))
	flush(ev)
	want := operator
	want.Cart = want.Cart.Apply(add("p2", 1))
	want.Version, want.UpdatedAt = 1, ev.Created
	assertDoc(t, store, want)
}

// TestRunForgetsTheCache: what the cache held before a (re)subscription
// is not trusted, since the documents may have moved meanwhile.
func TestRunForgetsTheCache(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	first := b.event("u1", add("p1", 1))
	second := b.event("u1", add("p2", 1))
	store := newFakeStore()
	store.docs["u1"] = fold(t, []eventlog.Event{first}, "u1")
	store.checkpoints[DefaultName] = first.Position
	log := newFakeLog()
	log.addEvents(first, second)
	p, err := New(Config{Source: log, Store: store, MinBackoff: 1, MaxBackoff: 1})
	if err != nil {
		t.Fatal(err)
	}
	// A memory of u1 at version 0 that does not match the store, as if
	// learned before someone else rewrote the document.
	p.cache.put(CartDoc{UserID: "u1", Version: 0, Cart: cart.Cart{Items: []cart.Item{{ProductID: "old", Quantity: 1}}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor(t, p, "catch-up", storedThrough(second.Position))
	assertDoc(t, store, fold(t, []eventlog.Event{first, second}, "u1"))
}

// TestCheckpointIntervalSpacesCheckpoints: a flush that is not told to
// store the checkpoint stores it only once CheckpointInterval has passed
// since the last one, and its progress keeps the checkpoint stored; a
// flush told to (nothing waits after it, caught up, stopping) always does.
func TestCheckpointIntervalSpacesCheckpoints(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	store := newFakeStore()
	p, err := New(Config{Source: newFakeLog(), Store: store, CheckpointInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }
	bt := &batch{}
	var evs []eventlog.Event
	step := func(save bool) {
		t.Helper()
		ev := b.event("u1", add("p1", 1))
		evs = append(evs, ev)
		bt.advance(ev.Position)
		bt.entries = append(bt.entries, decodeEntry(cart.Unmarshal, ev))
		if _, err := p.flush(context.Background(), bt, save); err != nil {
			t.Fatal(err)
		}
	}
	saves := func() []eventlog.Position {
		store.mu.Lock()
		defer store.mu.Unlock()
		return slices.Clone(store.saves)
	}
	step(false) // the first is due: none stored yet
	step(false)
	now = now.Add(30 * time.Second)
	step(false)
	if want := []eventlog.Position{evs[0].Position}; !reflect.DeepEqual(saves(), want) {
		t.Fatalf("checkpoints %v, want only the first within the interval: %v", saves(), want)
	}
	if pr := p.Progress(); pr.Checkpoint == nil || *pr.Checkpoint != evs[0].Position || pr.EventsApplied != 3 {
		t.Fatalf("progress = %+v, want checkpoint %v (the one stored) and 3 applied", pr, evs[0].Position)
	}
	assertDoc(t, store, fold(t, evs, "u1")) // the documents are never held back
	now = now.Add(31 * time.Second)
	step(false)
	step(true)
	if want := []eventlog.Position{evs[0].Position, evs[3].Position, evs[4].Position}; !reflect.DeepEqual(saves(), want) {
		t.Fatalf("checkpoints %v, want %v: once due, and when told to", saves(), want)
	}
}

// TestCacheBoundIsInBytes: a cart that grows takes more of the bound, so a
// cache sized for a few small carts holds fewer big ones, and its count of
// bytes returns to zero as carts leave it.
func TestCacheBoundIsInBytes(t *testing.T) {
	t.Parallel()
	small := CartDoc{UserID: "s", Version: 0, Cart: cart.Cart{Items: []cart.Item{{ProductID: "p", Quantity: 1}}}}
	big := CartDoc{UserID: "b", Version: 0}
	for i := range 40 {
		big.Cart.Items = append(big.Cart.Items, cart.Item{ProductID: fmt.Sprintf("product-%02d", i), Quantity: 1})
	}
	if docSize(big) < 10*docSize(small) {
		t.Fatalf("a 40-line cart is estimated at %d bytes, a 1-line one at %d", docSize(big), docSize(small))
	}
	sized := small
	sized.UserID = "s0"
	c := newDocCache(4 * docSize(sized))
	for i := range 4 {
		d := small
		d.UserID = fmt.Sprint("s", i)
		c.put(d)
	}
	if c.len() != 4 {
		t.Fatalf("%d small carts cached, want 4", c.len())
	}
	grown := small
	grown.UserID = "s3"
	grown.Cart = big.Cart
	c.put(grown) // s3 grew past the whole bound: everything else goes, then s3 too
	if c.len() != 0 || c.bytes != 0 {
		t.Fatalf("after a cart grew past the bound: %d carts, %d bytes; want none", c.len(), c.bytes)
	}
	c.put(small)
	c.drop("s")
	if c.len() != 0 || c.bytes != 0 {
		t.Fatalf("after drop: %d carts, %d bytes; want none", c.len(), c.bytes)
	}
}
