package standin

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// blockingSync is a wal.syncHook whose first call blocks until release is
// closed, so the test can queue writes behind an fsync in progress without
// relying on timing. Later calls return failLater (nil: a real fsync).
type blockingSync struct {
	entered   chan struct{}
	release   chan struct{}
	failLater error
	once      sync.Once
	mu        sync.Mutex
	calls     int
}

// unblock lets the first fsync return; safe to call more than once, so a
// cleanup can also call it and a failing test does not hang in store.close.
func (b *blockingSync) unblock() { b.once.Do(func() { close(b.release) }) }

func newBlockingSync(failLater error) *blockingSync {
	return &blockingSync{entered: make(chan struct{}), release: make(chan struct{}), failLater: failLater}
}

func (b *blockingSync) sync(f *os.File) error {
	b.mu.Lock()
	b.calls++
	first := b.calls == 1
	b.mu.Unlock()
	if first {
		close(b.entered)
		<-b.release
		return f.Sync()
	}
	if b.failLater != nil {
		return b.failLater
	}
	return f.Sync()
}

func openTestStore(t *testing.T, dir string) *store {
	t.Helper()
	s, err := newStore(dir, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.close() })
	return s
}

func proposedN(n int, tag string) []proposedEvent {
	out := make([]proposedEvent, n)
	for i := range out {
		out[i] = proposedEvent{id: uuid.New(), typ: "ItemAdded", json: true, data: fmt.Appendf(nil, `{"tag":%q,"i":%d}`, tag, i), meta: []byte{}}
	}
	return out
}

// queued is a write decided while the first fsync was blocked: what
// decideAppend returned, to be completed as store.append does.
type queued struct {
	name string
	out  appendOutcome
	at   *record
	g    *group
	err  error
}

func (q *queued) wait() (appendOutcome, error) { return awaitAppend(q.out, q.at, q.g, q.err) }

// startBlockedAppend appends one event to name in a goroutine and returns
// once the syncer is inside that append's fsync.
func startBlockedAppend(t *testing.T, s *store, hook *blockingSync, name string) <-chan error {
	t.Helper()
	t.Cleanup(hook.unblock)
	done := make(chan error, 1)
	go func() {
		_, err := s.append(name, expectNoStream, proposedN(1, "first"))
		done <- err
	}()
	select {
	case <-hook.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the first append never reached its fsync")
	}
	return done
}

// queueWrites decides, while the first fsync is blocked, appends to distinct
// streams, several to one shared stream (any, then exact revisions that
// only hold if each decision sees the pending ones before it), a
// metadata write and a wrong expected version caused by a pending write.
func queueWrites(s *store) []*queued {
	var qs []*queued
	add := func(name string, expected int64, evs []proposedEvent) *queued {
		out, at, g, err := s.decideAppend(name, expected, evs)
		q := &queued{name: name, out: out, at: at, g: g, err: err}
		qs = append(qs, q)
		return q
	}
	for i := range 8 {
		add(fmt.Sprintf("cart-distinct-%d", i), expectNoStream, proposedN(1+i%3, "distinct"))
	}
	add("cart-shared", expectNoStream, proposedN(2, "shared")) // revisions 0, 1
	add("cart-shared", expectAny, proposedN(1, "shared"))      // 2
	add("cart-shared", 2, proposedN(3, "shared"))              // 3..5
	add("$$cart-shared", expectAny, []proposedEvent{{id: uuid.New(), typ: eventTypeMetadata, json: true, data: []byte(`{"$maxCount":100}`), meta: []byte{}}})
	add("cart-shared", expectNoStream, proposedN(1, "late")) // wrong version: current 5, all pending
	return qs
}

func TestGroupCommitSharesOneFsync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	hook := newBlockingSync(nil)
	s.wal.syncHook = hook.sync
	syncsBefore := s.wal.syncs.Load()

	first := startBlockedAppend(t, s, hook, "cart-first")
	qs := queueWrites(s)

	// Nothing in flight is visible yet: reads and subscriptions see only
	// what is durable.
	if _, st := s.readStream("cart-first", true, revisionFrom{start: true}, 10); st != readNoStream {
		t.Fatalf("cart-first readable before its fsync returned (status %v)", st)
	}
	if _, st := s.readStream("cart-shared", true, revisionFrom{start: true}, 10); st != readNoStream {
		t.Fatalf("cart-shared readable before its fsync (status %v)", st)
	}
	logBefore, changed := s.logView()
	select {
	case <-changed:
		t.Fatal("subscriptions woken before the fsync returned")
	default:
	}
	for _, q := range qs {
		select {
		case <-q.g.done:
			t.Fatalf("%s acknowledged while the fsync before it is still running", q.name)
		default:
		}
	}

	hook.unblock()
	if err := <-first; err != nil {
		t.Fatalf("first append: %v", err)
	}
	wantCurrent := []int64{0, 1, 2, 0, 1, 2, 0, 1, 1, 2, 5, 0, 5}
	for i, q := range qs {
		out, err := q.wait()
		if err != nil {
			t.Fatalf("write %d to %s: %v", i, q.name, err)
		}
		if out.current != wantCurrent[i] || out.wrongVersion != (i == len(qs)-1) {
			t.Fatalf("write %d to %s: outcome %+v, want current %d", i, q.name, out, wantCurrent[i])
		}
		if !out.wrongVersion && !out.hasPos {
			t.Fatalf("write %d to %s: no position", i, q.name)
		}
	}
	appends := 1 + len(qs)
	syncs := s.wal.syncs.Load() - syncsBefore
	// One fsync for the first append, one for everything queued behind it.
	if syncs != 2 {
		t.Fatalf("%d appends took %d fsyncs, want 2", appends, syncs)
	}
	// cart-first 1, distinct 1+2+3+1+2+3+1+2, shared 2+1+3, metadata 1.
	if got, _ := s.logView(); len(got) != len(logBefore)+23 {
		t.Fatalf("$all holds %d records after the groups, want 23 more than %d", len(got), len(logBefore))
	}

	// Everything acknowledged is on disk, in the order decided.
	want, _ := s.logView()
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t, dir)
	got, _ := s2.logView()
	if len(got) != len(want) {
		t.Fatalf("reopened: %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].stream != want[i].stream || got[i].revision != want[i].revision || got[i].id != want[i].id || got[i].pos != want[i].pos {
			t.Fatalf("reopened record %d: %s@%d %s pos %d, want %s@%d %s pos %d", i,
				got[i].stream, got[i].revision, got[i].id, got[i].pos, want[i].stream, want[i].revision, want[i].id, want[i].pos)
		}
	}
	recs, _ := s2.readStream("cart-shared", true, revisionFrom{start: true}, 100)
	if revs := recordRevisions(recs); !equalSlices(revs, []uint64{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("cart-shared revisions %v", revs)
	}
}

func recordRevisions(recs []*record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.revision
	}
	return out
}

func TestFsyncFailureFailsTheGroupAndFailsClosed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	injected := errors.New("injected fsync failure")
	hook := newBlockingSync(injected)
	s.wal.syncHook = hook.sync

	first := startBlockedAppend(t, s, hook, "cart-first")
	qs := queueWrites(s)
	// A soft delete of a stream that exists only in the failing group, a
	// tombstone, and an append answered "deleted" because of that tombstone.
	delRec, delGroup, delErr := s.decideDelete("cart-distinct-0", expectAny, false)
	if delErr != nil {
		t.Fatalf("decide soft delete: %v", delErr)
	}
	tombRec, tombGroup, tombErr := s.decideDelete("cart-distinct-1", expectAny, true)
	if tombErr != nil {
		t.Fatalf("decide tombstone: %v", tombErr)
	}
	deleted := &queued{name: "cart-distinct-1"}
	deleted.out, deleted.at, deleted.g, deleted.err = s.decideAppend(deleted.name, expectAny, proposedN(1, "deleted"))
	if !errors.As(deleted.err, new(streamDeletedError)) {
		t.Fatalf("append to the stream being tombstoned decided %v, want stream deleted", deleted.err)
	}
	qs = append(qs, deleted)
	durable, _ := s.logView()

	hook.unblock()
	if err := <-first; err != nil {
		t.Fatalf("first append (synced before the failure): %v", err)
	}
	for i, q := range qs {
		if _, err := q.wait(); !errors.Is(err, errUnavailable) {
			t.Fatalf("write %d to %s in the failed group: err = %v, want %v", i, q.name, err, errUnavailable)
		}
	}
	if _, err := awaitDelete(delRec, delGroup, delErr); !errors.Is(err, errUnavailable) {
		t.Fatalf("soft delete in the failed group: err = %v", err)
	}
	if _, err := awaitDelete(tombRec, tombGroup, tombErr); !errors.Is(err, errUnavailable) {
		t.Fatalf("tombstone in the failed group: err = %v", err)
	}

	// Memory is not ahead of the disk: only the first append was published.
	after, _ := s.logView()
	if len(after) != len(durable)+1 || after[len(after)-1].stream != "cart-first" {
		t.Fatalf("published %d records after the failure, want the %d durable ones plus cart-first", len(after), len(durable))
	}
	for _, name := range []string{"cart-shared", "cart-distinct-0", "$$cart-shared"} {
		if _, st := s.readStream(name, true, revisionFrom{start: true}, 10); st != readNoStream {
			t.Fatalf("%s readable after its group failed (status %v)", name, st)
		}
	}
	// Failed closed: no more writes, and no outcome decided on lost state.
	if _, err := s.append("cart-new", expectAny, proposedN(1, "after")); !errors.Is(err, errUnavailable) {
		t.Fatalf("append after the failure: err = %v, want %v", err, errUnavailable)
	}
	if _, err := s.append("cart-first", expectNoStream, proposedN(1, "after")); !errors.Is(err, errUnavailable) {
		t.Fatalf("append (would be wrong version) after the failure: err = %v, want %v", err, errUnavailable)
	}
	if _, err := s.delete("cart-first", expectAny, true); !errors.Is(err, errUnavailable) {
		t.Fatalf("tombstone after the failure: err = %v, want %v", err, errUnavailable)
	}
	if recs, st := s.readStream("cart-first", true, revisionFrom{start: true}, 10); st != readOK || len(recs) != 1 {
		t.Fatalf("reads after the failure: %d records, status %v", len(recs), st)
	}

	// A restart recovers exactly the synced state and can write again.
	if err := s.close(); err != nil {
		t.Logf("close after failure: %v", err)
	}
	s2 := openTestStore(t, dir)
	got, _ := s2.logView()
	if len(got) != len(after) {
		t.Fatalf("reopened: %d records, want the %d synced ones", len(got), len(after))
	}
	out, err := s2.append("cart-shared", expectNoStream, proposedN(1, "again"))
	if err != nil || out.current != 0 {
		t.Fatalf("append after restart: %+v, %v", out, err)
	}
}
