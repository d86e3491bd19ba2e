package standin

import (
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func setMeta(tb testing.TB, c *esdb.Client, stream string, set func(*esdb.StreamMetadata)) {
	tb.Helper()
	m := esdb.StreamMetadata{}
	set(&m)
	if _, err := c.SetStreamMetadata(testCtx(tb), stream, esdb.AppendToStreamOptions{}, m); err != nil {
		tb.Fatalf("set metadata of %s: %v", stream, err)
	}
}

func TestMetadataTruncatesReads(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)

	tests := []struct {
		name string
		set  func(*esdb.StreamMetadata)
		opts esdb.ReadStreamOptions
		want []uint64
	}{
		{"maxCount forwards", func(m *esdb.StreamMetadata) { m.SetMaxCount(2) }, esdb.ReadStreamOptions{}, []uint64{3, 4}},
		{"maxCount backwards", func(m *esdb.StreamMetadata) { m.SetMaxCount(2) }, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, []uint64{4, 3}},
		{"maxCount from an old revision", func(m *esdb.StreamMetadata) { m.SetMaxCount(2) }, esdb.ReadStreamOptions{From: esdb.Revision(1)}, []uint64{3, 4}},
		{"truncate before", func(m *esdb.StreamMetadata) { m.SetTruncateBefore(3) }, esdb.ReadStreamOptions{}, []uint64{3, 4}},
		{"truncate before, backwards", func(m *esdb.StreamMetadata) { m.SetTruncateBefore(3) }, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(2)}, nil},
		{"both, the stricter wins", func(m *esdb.StreamMetadata) { m.SetMaxCount(3); m.SetTruncateBefore(4) }, esdb.ReadStreamOptions{}, []uint64{4}},
		{"truncate before everything", func(m *esdb.StreamMetadata) { m.SetTruncateBefore(10) }, esdb.ReadStreamOptions{}, nil},
	}
	t.Run("reads", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				stream := "cart-meta-" + tt.name
				mustAppend(t, c, stream, esdb.NoStream{}, events(5, "E")...)
				setMeta(t, c, stream, tt.set)
				got, err := readStream(t, c, stream, tt.opts, 10)
				if err != nil {
					t.Fatalf("read: %v (an empty truncated stream still exists)", err)
				}
				if !equalSlices(revisions(got), tt.want) {
					t.Fatalf("revisions = %v, want %v", revisions(got), tt.want)
				}
			})
		}
	})

	// $all is not affected by stream metadata.
	if n := countStream(readAll(t, c, esdb.ReadAllOptions{}, 1000), "cart-meta-maxCount forwards"); n != 5 {
		t.Fatalf("$all has %d events of the truncated stream, want 5", n)
	}
}

func TestMetadataMaxAge(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := Start(t, withClock(clock.Now))
	c := newClient(t, s)
	mustAppend(t, c, "cart-age", esdb.NoStream{}, events(2, "Old")...)
	setMeta(t, c, "cart-age", func(m *esdb.StreamMetadata) { m.SetMaxAge(time.Hour) })
	clock.Advance(30 * time.Minute)
	mustAppend(t, c, "cart-age", esdb.Revision(1), jsonEvent("Newer", `{}`))

	got, err := readStream(t, c, "cart-age", esdb.ReadStreamOptions{}, 10)
	if err != nil || !equalSlices(revisions(got), []uint64{0, 1, 2}) {
		t.Fatalf("before expiry: %v, %v", revisions(got), err)
	}
	clock.Advance(45 * time.Minute)
	got, err = readStream(t, c, "cart-age", esdb.ReadStreamOptions{}, 10)
	if err != nil || !equalSlices(revisions(got), []uint64{2}) {
		t.Fatalf("after the first events expired: %v, %v; want [2]", revisions(got), err)
	}
	clock.Advance(time.Hour)
	got, err = readStream(t, c, "cart-age", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("after all expired: %v, %v; want an empty read, not not-found", revisions(got), err)
	}

	// A catch-up subscription skips expired events too.
	sub := subscribeStream(t, c, "cart-age", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	expectMessages(t, sub, "caught-up")
	mustAppend(t, c, "cart-age", esdb.Revision(2), jsonEvent("Fresh", `{}`))
	expectMessages(t, sub, "e:cart-age@3")
}

func TestStreamMetadataIsTheLatest(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	setMeta(t, c, "cart-md", func(m *esdb.StreamMetadata) { m.SetMaxCount(5) })
	setMeta(t, c, "cart-md", func(m *esdb.StreamMetadata) { m.SetMaxCount(7); m.AddCustomProperty("owner", "cart") })

	meta, err := c.GetStreamMetadata(testCtx(t), "cart-md", esdb.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if meta.MaxCount() == nil || *meta.MaxCount() != 7 || meta.CustomProperty("owner") != "cart" {
		t.Fatalf("metadata = %+v, want the latest ($maxCount 7, owner)", meta)
	}
	// $$ streams behave as $maxCount 1.
	if got, err := readStream(t, c, "$$cart-md", esdb.ReadStreamOptions{}, 10); err != nil || !equalSlices(revisions(got), []uint64{1}) {
		t.Fatalf("$$cart-md = %v, %v; want only revision 1", revisions(got), err)
	}
	// Metadata makes stream_exists pass on a stream without events, as in
	// the server.
	mustAppend(t, c, "cart-md", esdb.StreamExists{}, jsonEvent("E", `{}`))
}

func TestMetadataOfSoftDeletedStreamRecreatesIt(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-md-del", esdb.NoStream{}, events(3, "E")...)
	if _, err := c.DeleteStream(testCtx(t), "cart-md-del", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	setMeta(t, c, "cart-md-del", func(m *esdb.StreamMetadata) { m.SetMaxCount(10) })

	got, err := readStream(t, c, "cart-md-del", esdb.ReadStreamOptions{}, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("read = %v, %v; want an existing, empty stream", revisions(got), err)
	}
	meta, err := c.GetStreamMetadata(testCtx(t), "cart-md-del", esdb.ReadStreamOptions{})
	if err != nil || meta.MaxCount() == nil || *meta.MaxCount() != 10 || meta.TruncateBefore() == nil || *meta.TruncateBefore() != 3 {
		t.Fatalf("metadata = %+v, %v; want $maxCount 10 and $tb 3", meta, err)
	}
}
