package standin

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// allSnapshot is $all as comparable values: stream, revision, id, position,
// type and data of every record.
type snapshotEntry struct {
	stream   string
	revision uint64
	id       uuid.UUID
	pos      esdb.Position
	typ      string
	data     string
}

func allSnapshot(tb testing.TB, c *esdb.Client) []snapshotEntry {
	tb.Helper()
	var out []snapshotEntry
	for _, e := range readAll(tb, c, esdb.ReadAllOptions{}, 1<<20) {
		ev := e.OriginalEvent()
		out = append(out, snapshotEntry{ev.StreamID, ev.EventNumber, ev.EventID, ev.Position, ev.EventType, string(ev.Data)})
	}
	return out
}

func TestRestartRecoversFromDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := Start(t, WithDataDir(dir))
	c := newClient(t, s)
	batch := events(3, "ItemAdded")
	mustAppend(t, c, "cart-p1", esdb.NoStream{}, batch...)
	mustAppend(t, c, "cart-p2", esdb.NoStream{}, events(2, "ItemAdded")...)
	setMeta(t, c, "cart-p1", func(m *esdb.StreamMetadata) { m.SetMaxCount(2) })
	if _, err := c.DeleteStream(testCtx(t), "cart-p2", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(1)}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, c, "cart-p3", esdb.NoStream{}, jsonEvent("E", `{}`))
	if _, err := c.TombstoneStream(testCtx(t), "cart-p3", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	before := allSnapshot(t, c)

	s2 := s.Restart(t)
	if s2.Addr() != s.Addr() {
		t.Fatalf("restarted on %s, want %s", s2.Addr(), s.Addr())
	}
	c2 := newClient(t, s2)
	after := allSnapshot(t, c2)
	if !equalSlices(after, before) {
		t.Fatalf("$all after restart differs:\n got %v\nwant %v", after, before)
	}
	if got, err := readStream(t, c2, "cart-p1", esdb.ReadStreamOptions{}, 10); err != nil || !equalSlices(revisions(got), []uint64{1, 2}) {
		t.Fatalf("cart-p1 after restart = %v, %v; want $maxCount 2 honoured", revisions(got), err)
	}
	if _, err := readStream(t, c2, "cart-p2", esdb.ReadStreamOptions{}, 10); !isNotFound(err) {
		t.Fatalf("soft-deleted cart-p2 after restart: %v, want not found", err)
	}
	if _, err := readStream(t, c2, "cart-p3", esdb.ReadStreamOptions{}, 10); err == nil {
		t.Fatal("tombstoned cart-p3 readable after restart")
	}

	// Idempotence survives the restart; new writes continue where the log
	// ended.
	res := mustAppend(t, c2, "cart-p1", esdb.NoStream{}, batch...)
	if res.NextExpectedVersion != 2 {
		t.Fatalf("retried batch landed at %d, want the original revision 2", res.NextExpectedVersion)
	}
	res = mustAppend(t, c2, "cart-p1", esdb.Revision(2), jsonEvent("E", `{}`))
	if last := before[len(before)-1].pos; res.NextExpectedVersion != 3 || res.CommitPosition <= last.Commit {
		t.Fatalf("new append = %+v, want revision 3 after position %d", res, last.Commit)
	}

	// The client that was connected before the restart reconnects by
	// itself to the same connection string.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := readStream(t, c, "cart-p1", esdb.ReadStreamOptions{}, 10)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old client never reconnected: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRestartInMemoryKeepsEvents(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-mem", esdb.NoStream{}, events(2, "E")...)
	before := allSnapshot(t, c)
	s2 := s.Restart(t)
	if after := allSnapshot(t, newClient(t, s2)); !equalSlices(after, before) {
		t.Fatalf("$all after restart = %v, want %v", after, before)
	}
}

func TestTornTailIsDiscarded(t *testing.T) {
	t.Parallel()
	frame := func(base uint64) []byte {
		return encodeFrame(base, []*record{{stream: "cart-torn", revision: 2, id: uuid.New(), typ: "Torn", data: []byte(`{}`)}})
	}
	tests := []struct {
		name string
		tail func(size int64) []byte
	}{
		{"partial frame header", func(size int64) []byte { return frame(uint64(size))[:5] }},
		{"frame cut short", func(size int64) []byte { f := frame(uint64(size)); return f[:len(f)-3] }},
		{"bad checksum on the last frame", func(size int64) []byte { f := frame(uint64(size)); f[len(f)-1] ^= 0xff; return f }},
		{"zero-filled tail", func(int64) []byte { return make([]byte, 4096) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := Start(t, WithDataDir(dir))
			c := newClient(t, s)
			mustAppend(t, c, "cart-torn", esdb.NoStream{}, events(2, "E")...)
			before := allSnapshot(t, c)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, logFileName)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			appendFile(t, path, tt.tail(info.Size()))

			s2 := Start(t, WithDataDir(dir))
			c2 := newClient(t, s2)
			after := allSnapshot(t, c2)
			// The restart adds only its epoch record, which $all hides.
			if !equalSlices(after, before) {
				t.Fatalf("$all after recovery:\n got %v\nwant %v", after, before)
			}
			res := mustAppend(t, c2, "cart-torn", esdb.Revision(1), jsonEvent("Fresh", `{}`))
			if res.NextExpectedVersion != 2 {
				t.Fatalf("append after recovery at revision %d, want 2", res.NextExpectedVersion)
			}
			// The new frame follows the intact data, not the torn bytes.
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			s3 := Start(t, WithDataDir(dir))
			got, err := readStream(t, newClient(t, s3), "cart-torn", esdb.ReadStreamOptions{}, 10)
			if err != nil || !equalSlices(revisions(got), []uint64{0, 1, 2}) || got[2].OriginalEvent().EventType != "Fresh" {
				t.Fatalf("after a second restart: %v, %v", revisions(got), err)
			}
		})
	}
}

func TestCorruptionBeforeTheTailFailsToStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := Start(t, WithDataDir(dir))
	c := newClient(t, s)
	mustAppend(t, c, "cart-corrupt", esdb.NoStream{}, jsonEvent("E", `{"a":1}`))
	mustAppend(t, c, "cart-corrupt", esdb.Revision(0), jsonEvent("E", `{"a":2}`))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, logFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[fileHeaderSize+frameHeaderSize+6] ^= 0xff // inside the first frame (the epoch)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{DataDir: dir}); err == nil {
		t.Fatal("New succeeded on a log corrupted before its tail; acknowledged events would be lost")
	}
}

func TestDataDirIsExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	Start(t, WithDataDir(dir))
	if s, err := New(Config{DataDir: dir}); err == nil {
		_ = s.Close()
		t.Fatal("a second server opened a data directory in use")
	}
}

func TestNotALog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, logFileName), []byte("hello, world, this is not a log"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{DataDir: dir}); err == nil {
		t.Fatal("New accepted a file that is not an event log")
	}
}

func appendFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

func TestServeStopsOnContextAndEndsSubscriptions(t *testing.T) {
	t.Parallel()
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()

	c := newClient(t, s)
	sub := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}})
	expectMessages(t, sub, "caught-up")

	cancel()
	if m := sub.Recv(); m.SubscriptionDropped == nil || status.Code(m.SubscriptionDropped.Error) != codes.Unavailable {
		t.Fatalf("subscription on shutdown: %+v, want a drop with Unavailable", m)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after cancellation", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancellation")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := s.Serve(context.Background()); err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
}
