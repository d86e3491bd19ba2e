package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventlog"
)

// testCtx bounds a test well above what it needs, so a hang fails the test
// instead of the whole run.
func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// open starts a stand-in and a Store connected to it, both closed with the test.
func open(tb testing.TB) (*standin.Server, *Store) {
	tb.Helper()
	srv := standin.Start(tb)
	return srv, openAt(tb, srv.ConnectionString())
}

// rawClient is a plain v4 client on srv, for what the Store does not offer
// (writing foreign events, reading stream metadata).
func rawClient(tb testing.TB, srv *standin.Server) *esdb.Client {
	tb.Helper()
	cfg, err := esdb.ParseConnectionString(srv.ConnectionString())
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func openAt(tb testing.TB, conn string) *Store {
	tb.Helper()
	s, err := Open(testCtx(tb), conn, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

var eur = func(units int64) cart.Money { return cart.Money{CurrencyCode: "EUR", Units: units} }

func meta(cmdID string) cart.Metadata {
	return cart.Metadata{
		CommandID:   cmdID,
		CommandType: "AddItem",
		CommandHash: "h-" + cmdID,
		Principal:   "tester",
		Time:        time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func added(product string, q int) cart.Event {
	return cart.ItemAdded{ProductID: product, Quantity: q, UnitPrice: eur(2)}
}

func mustAppend(tb testing.TB, s *Store, user string, expected int64, m cart.Metadata, evs ...cart.Event) int64 {
	tb.Helper()
	rev, err := s.AppendEvents(testCtx(tb), user, expected, m, evs)
	if err != nil {
		tb.Fatalf("AppendEvents(%s, %d): %v", user, expected, err)
	}
	return rev
}

func TestStreamName(t *testing.T) {
	t.Parallel()
	if got := StreamName("u-1"); got != "cart-u-1" {
		t.Errorf("StreamName = %q, want cart-u-1", got)
	}
	if strings.HasPrefix(SnapshotStream("u-1"), StreamPrefix) {
		t.Errorf("snapshot stream %q starts with the projector's prefix %q", SnapshotStream("u-1"), StreamPrefix)
	}
}

func TestReadStreamOfMissingStreamIsEmpty(t *testing.T) {
	t.Parallel()
	_, s := open(t)
	got, err := s.ReadStream(testCtx(t), "nobody", 0, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadStream = %v, %v; want no events, nil", got, err)
	}
	calls := 0
	if err := s.LoadEvents(testCtx(t), "nobody", 0, func(int64, cart.Event, cart.Metadata) error { calls++; return nil }); err != nil || calls != 0 {
		t.Fatalf("LoadEvents = %v with %d calls; want nil, 0", err, calls)
	}
}

func TestAppendThenRead(t *testing.T) {
	t.Parallel()
	_, s := open(t)
	ctx := testCtx(t)
	m := meta(uuid.NewString())
	if rev := mustAppend(t, s, "u1", -1, m, added("p1", 1), added("p2", 3)); rev != 1 {
		t.Fatalf("first append: revision %d, want 1", rev)
	}
	m2 := meta(uuid.NewString())
	if rev := mustAppend(t, s, "u1", 1, m2, cart.ItemRemoved{ProductID: "p1"}); rev != 2 {
		t.Fatalf("second append: revision %d, want 2", rev)
	}

	got, err := s.ReadStream(ctx, "u1", 0, 0)
	if err != nil {
		t.Fatalf("ReadStream: %v", err)
	}
	wantTypes := []string{cart.TypeItemAdded, cart.TypeItemAdded, cart.TypeItemRemoved}
	if len(got) != len(wantTypes) {
		t.Fatalf("ReadStream returned %d events, want %d", len(got), len(wantTypes))
	}
	for i, e := range got {
		if e.Revision != int64(i) || e.Type != wantTypes[i] || e.StreamID != "cart-u1" || e.UserID != "u1" {
			t.Errorf("event %d = rev %d type %s stream %s user %s", i, e.Revision, e.Type, e.StreamID, e.UserID)
		}
		if e.Created.IsZero() || e.Position == (eventlog.Position{}) {
			t.Errorf("event %d: created %v, position %v; want both set", i, e.Created, e.Position)
		}
		if i > 0 && !got[i-1].Position.Less(e.Position) {
			t.Errorf("event %d: position %v not after %v", i, e.Position, got[i-1].Position)
		}
	}
	if want := EventID(m.CommandID, m.CommandHash, 1, got[1].Data).String(); got[1].EventID != want {
		t.Errorf("event 1 ID = %s, want the derived %s", got[1].EventID, want)
	}
	var data map[string]any
	if err := json.Unmarshal(got[1].Data, &data); err != nil || data["product_id"] != "p2" || data["quantity"] != float64(3) {
		t.Errorf("event 1 data = %s (%v); want product p2, quantity 3", got[1].Data, err)
	}
	gm, err := cart.UnmarshalMetadata(got[2].Metadata)
	if err != nil || gm.CommandID != m2.CommandID || gm.Principal != "tester" || !gm.Time.Equal(m2.Time) {
		t.Errorf("event 2 metadata = %+v (%v); want %+v", gm, err, m2)
	}

	part, err := s.ReadStream(ctx, "u1", 1, 1)
	if err != nil || len(part) != 1 || part[0].Revision != 1 {
		t.Fatalf("ReadStream(from 1, count 1) = %v, %v; want revision 1 only", part, err)
	}

	var revs []int64
	var c cart.Cart
	err = s.LoadEvents(ctx, "u1", 1, func(rev int64, e cart.Event, md cart.Metadata) error {
		revs = append(revs, rev)
		c = c.Apply(e)
		if md.CommandType != "AddItem" {
			t.Errorf("revision %d: command type %q", rev, md.CommandType)
		}
		return nil
	})
	if err != nil || len(revs) != 2 || revs[0] != 1 || revs[1] != 2 {
		t.Fatalf("LoadEvents(from 1) revisions %v, %v; want [1 2]", revs, err)
	}
}

func TestLoadEventsStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	_, s := open(t)
	mustAppend(t, s, "u", -1, meta(uuid.NewString()), added("a", 1), added("b", 1), added("c", 1))
	stop := errors.New("enough")
	calls := 0
	err := s.LoadEvents(testCtx(t), "u", 0, func(int64, cart.Event, cart.Metadata) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("LoadEvents = %v after %d calls; want the callback's error after 1", err, calls)
	}
}

func TestLoadEventsRejectsUndecodableEvent(t *testing.T) {
	t.Parallel()
	srv, s := open(t)
	c := rawClient(t, srv)
	_, err := c.AppendToStream(testCtx(t), StreamName("u"), esdb.AppendToStreamOptions{},
		esdb.EventData{EventType: "ItemTeleported", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	err = s.LoadEvents(testCtx(t), "u", 0, func(int64, cart.Event, cart.Metadata) error { return nil })
	var de *cart.DecodeError
	if !errors.As(err, &de) || de.Type != "ItemTeleported" {
		t.Fatalf("LoadEvents = %v; want a *cart.DecodeError for ItemTeleported", err)
	}
}

func TestAppendConflicts(t *testing.T) {
	t.Parallel()
	_, s := open(t)
	ctx := testCtx(t)
	mustAppend(t, s, "u", -1, meta(uuid.NewString()), added("a", 1))
	tests := []struct {
		name     string
		expected int64
	}{
		{"no stream expected but it exists", -1},
		{"behind", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.AppendEvents(ctx, "u", tt.expected, meta(uuid.NewString()), []cart.Event{added("b", 1)})
			if !errors.Is(err, cart.ErrConcurrencyConflict) {
				t.Fatalf("AppendEvents(expected %d) = %v; want ErrConcurrencyConflict", tt.expected, err)
			}
		})
	}
	if _, err := s.AppendEvents(ctx, "u", -2, meta("x"), []cart.Event{added("b", 1)}); err == nil {
		t.Error("AppendEvents(expected -2) succeeded; want an error")
	}
	if _, err := s.AppendEvents(ctx, "u", 0, meta("x"), nil); err == nil {
		t.Error("AppendEvents(no events) succeeded; want an error")
	}
}

// A batch resent at the same expected revision with the same (derived)
// event IDs is recognised by the store and not written twice; the same
// command ID with another fingerprint is a conflict, not a false success.
func TestAppendResentBatchIsIdempotent(t *testing.T) {
	t.Parallel()
	_, s := open(t)
	ctx := testCtx(t)
	m := meta(uuid.NewString())
	first := mustAppend(t, s, "u", -1, m, added("a", 1), added("b", 2))
	again, err := s.AppendEvents(ctx, "u", -1, m, []cart.Event{added("a", 1), added("b", 2)})
	if err != nil || again != first {
		t.Fatalf("resent batch: revision %d, %v; want %d, nil", again, err, first)
	}
	other := m
	other.CommandHash = "another fingerprint"
	if _, err := s.AppendEvents(ctx, "u", -1, other, []cart.Event{added("a", 1), added("b", 2)}); !errors.Is(err, cart.ErrConcurrencyConflict) {
		t.Fatalf("same command ID, other fingerprint: %v; want ErrConcurrencyConflict", err)
	}
	got, err := s.ReadStream(ctx, "u", 0, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("stream holds %d events (%v); want 2", len(got), err)
	}
}

func TestSnapshots(t *testing.T) {
	t.Parallel()
	srv, s := open(t)
	ctx := testCtx(t)
	got, err := s.ReadSnapshot(ctx, "u")
	if err != nil || got != nil {
		t.Fatalf("ReadSnapshot before any = %q, %v; want nil, nil", got, err)
	}
	for i := range 3 {
		if err := s.WriteSnapshot(ctx, "u", []byte(`{"n":`+string(rune('0'+i))+`}`)); err != nil {
			t.Fatalf("WriteSnapshot %d: %v", i, err)
		}
	}
	got, err = s.ReadSnapshot(ctx, "u")
	if err != nil || string(got) != `{"n":2}` {
		t.Fatalf("ReadSnapshot = %q, %v; want the latest", got, err)
	}
	md, err := rawClient(t, srv).GetStreamMetadata(ctx, SnapshotStream("u"), esdb.ReadStreamOptions{})
	if err != nil || md.MaxCount() == nil || *md.MaxCount() != 1 {
		t.Fatalf("snapshot stream metadata = %+v, %v; want $maxCount 1", md, err)
	}
	n, err := s.readRaw(ctx, SnapshotStream("u"), esdb.Forwards, esdb.Start{}, 100, func(*esdb.RecordedEvent) error { return nil })
	if err != nil || n != 1 {
		t.Fatalf("snapshot stream readable events = %d, %v; want 1", n, err)
	}
	if evs, err := s.ReadStream(ctx, "u", 0, 0); err != nil || len(evs) != 0 {
		t.Fatalf("cart stream after snapshots = %d events, %v; want none", len(evs), err)
	}
}

func TestHeadPosition(t *testing.T) {
	t.Parallel()
	_, s := open(t)
	ctx := testCtx(t)
	mustAppend(t, s, "a", -1, meta(uuid.NewString()), added("p", 1))
	mustAppend(t, s, "b", -1, meta(uuid.NewString()), added("p", 1), added("q", 1))
	evs, err := s.ReadStream(ctx, "b", 1, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("ReadStream: %v, %v", evs, err)
	}
	head, err := s.HeadPosition(ctx)
	if err != nil || head != evs[0].Position {
		t.Fatalf("HeadPosition = %v, %v; want the last event's %v", head, err, evs[0].Position)
	}
}

func TestHeadEventSkipsOtherStreams(t *testing.T) {
	t.Parallel()
	_, s := open(t)
	ctx := testCtx(t)
	if _, found, err := s.HeadEvent(ctx); err != nil || found {
		t.Fatalf("HeadEvent of an empty log: found %v, %v; want none", found, err)
	}
	mustAppend(t, s, "a", -1, meta(uuid.NewString()), added("p", 1), added("q", 1))
	evs, err := s.ReadStream(ctx, "a", 1, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("ReadStream: %v, %v", evs, err)
	}
	// A snapshot is newer in $all than the cart's last event.
	if err := s.WriteSnapshot(ctx, "a", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	head, err := s.HeadPosition(ctx)
	if err != nil || !evs[0].Position.Less(head) {
		t.Fatalf("HeadPosition = %v, %v; want the snapshot after %v", head, err, evs[0].Position)
	}
	ev, found, err := s.HeadEvent(ctx)
	if err != nil || !found || ev.Position != evs[0].Position || ev.StreamID != StreamName("a") || ev.Created.IsZero() {
		t.Fatalf("HeadEvent = %+v, %v, %v; want the cart event at %v", ev, found, err, evs[0].Position)
	}
}

func TestPingFollowsTheServer(t *testing.T) {
	t.Parallel()
	srv, s := open(t)
	ctx := testCtx(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping with the server up: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// Enough failed pings for the client to give up discovery for good
	// (10 attempts), which the Store must survive by renewing the client.
	for i := range 3 {
		if err := s.Ping(ctx); !errors.Is(err, cart.ErrUnavailable) {
			t.Fatalf("Ping %d with the server down = %v; want ErrUnavailable", i, err)
		}
	}
	srv.Restart(t)
	eventually(t, func() error { return s.Ping(ctx) })
}

// The client closes itself for good when it cannot discover a node, as
// happens when the service starts before the store; the Store renews it.
func TestOpenBeforeTheServerStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the client's discovery to give up (about a second)")
	}
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s := openAt(t, "esdb://"+addr+"?tls=false")
	ctx := testCtx(t)
	for i := range 2 { // the first exhausts discovery, the second sees the closed client
		if err := s.Ping(ctx); !errors.Is(err, cart.ErrUnavailable) {
			t.Fatalf("Ping %d before the server started = %v; want ErrUnavailable", i, err)
		}
	}
	srv, err := standin.New(standin.Config{Listen: addr})
	if err != nil {
		t.Fatalf("start stand-in on %s: %v", addr, err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	eventually(t, func() error { return s.Ping(ctx) })
	if _, err := s.AppendEvents(ctx, "u", -1, meta(uuid.NewString()), []cart.Event{added("a", 1)}); err != nil {
		t.Fatalf("AppendEvents after the server came up: %v", err)
	}
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	_, s := open(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.ReadStream(testCtx(t), "u", 0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadStream after Close = %v; want ErrClosed", err)
	}
	if _, err := s.AppendEvents(testCtx(t), "u", -1, meta("x"), []cart.Event{added("a", 1)}); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendEvents after Close = %v; want ErrClosed", err)
	}
}

func TestOpenRejectsBadConnectionStringWithoutLeakingIt(t *testing.T) {
	t.Parallel()
	tests := []string{
		"http://admin:s3cret@localhost:2113",
		"esdb://admin:s3cret@localhost:2113?tls=maybe",
		"esdb://admin:s3cret@local host:2113",
	}
	for _, conn := range tests {
		t.Run(conn, func(t *testing.T) {
			t.Parallel()
			_, err := Open(context.Background(), conn, nil)
			if err == nil {
				t.Fatal("Open succeeded; want an error")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"esdb://127.0.0.1:2113?tls=false", "esdb://127.0.0.1:2113?tls=false"},
		{"esdb://admin:changeit@host:2113?tls=true", "esdb://admin:xxxxx@host:2113?tls=true"},
		{"esdb+discover://admin:p@ss@cluster.dns:2113", "esdb+discover://admin:xxxxx@cluster.dns:2113"},
		{"esdb://admin:changeit@h1:2113,h2:2113,h3:2113", "esdb://admin:xxxxx@h1:2113,h2:2113,h3:2113"},
		{"esdb://admin@host:2113", "esdb://admin@host:2113"},
		{"not a url", "not a url"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// eventually retries f until it succeeds or 20 s pass, for conditions that
// become true asynchronously (a restarted server accepting connections).
func eventually(tb testing.TB, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met in 20 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
