package standin

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// message is a subscription message in a comparable form:
// "e:<stream>@<revision>", "c:<position>" or "caught-up".
func message(tb testing.TB, sub *esdb.Subscription) string {
	tb.Helper()
	m := sub.Recv()
	switch {
	case m.EventAppeared != nil:
		e := m.EventAppeared.OriginalEvent()
		return fmt.Sprintf("e:%s@%d", e.StreamID, e.EventNumber)
	case m.CheckPointReached != nil:
		return fmt.Sprintf("c:%d", m.CheckPointReached.Commit)
	case m.CaughtUp != nil:
		return "caught-up"
	case m.SubscriptionDropped != nil:
		tb.Fatalf("subscription dropped: %v", m.SubscriptionDropped.Error)
	}
	tb.Fatalf("unexpected subscription message %+v", m)
	return ""
}

func messages(tb testing.TB, sub *esdb.Subscription, n int) []string {
	tb.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = message(tb, sub)
	}
	return out
}

func expectMessages(tb testing.TB, sub *esdb.Subscription, want ...string) {
	tb.Helper()
	if got := messages(tb, sub, len(want)); !equalSlices(got, want) {
		tb.Fatalf("subscription messages:\n got %v\nwant %v", got, want)
	}
}

// expectEvents is expectMessages ignoring checkpoints.
func expectEvents(tb testing.TB, sub *esdb.Subscription, want ...string) {
	tb.Helper()
	var got []string
	for len(got) < len(want) {
		if m := message(tb, sub); !strings.HasPrefix(m, "c:") {
			got = append(got, m)
		}
	}
	if !equalSlices(got, want) {
		tb.Fatalf("subscription messages:\n got %v\nwant %v", got, want)
	}
}

func subscribeAll(tb testing.TB, c *esdb.Client, opts esdb.SubscribeToAllOptions) *esdb.Subscription {
	tb.Helper()
	sub, err := c.SubscribeToAll(testCtx(tb), opts)
	if err != nil {
		tb.Fatalf("subscribe to $all: %v", err)
	}
	tb.Cleanup(func() { _ = sub.Close() })
	return sub
}

func subscribeStream(tb testing.TB, c *esdb.Client, stream string, opts esdb.SubscribeToStreamOptions) *esdb.Subscription {
	tb.Helper()
	sub, err := c.SubscribeToStream(testCtx(tb), stream, opts)
	if err != nil {
		tb.Fatalf("subscribe to %s: %v", stream, err)
	}
	tb.Cleanup(func() { _ = sub.Close() })
	return sub
}

func prefixFilter(prefixes ...string) *esdb.SubscriptionFilter {
	return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: prefixes}
}

func TestStreamSubscriptionStarts(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-ss", esdb.NoStream{}, events(3, "E")...)

	tests := []struct {
		name string
		from esdb.StreamPosition
		want []string // before the live event cart-ss@3
	}{
		{"start", esdb.Start{}, []string{"e:cart-ss@0", "e:cart-ss@1", "e:cart-ss@2", "caught-up"}},
		{"revision is exclusive", esdb.Revision(1), []string{"e:cart-ss@2", "caught-up"}},
		{"end", esdb.End{}, []string{"caught-up"}},
	}
	subs := make([]*esdb.Subscription, len(tests))
	for i, tt := range tests {
		subs[i] = subscribeStream(t, c, "cart-ss", esdb.SubscribeToStreamOptions{From: tt.from})
		expectMessages(t, subs[i], tt.want...)
	}
	mustAppend(t, c, "cart-ss", esdb.Revision(2), jsonEvent("E", `{}`))
	for i := range tests {
		expectMessages(t, subs[i], "e:cart-ss@3")
	}
}

func TestStreamSubscriptionWaitsForMissingStream(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	sub := subscribeStream(t, c, "cart-later", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	expectMessages(t, sub, "caught-up")
	mustAppend(t, c, "cart-other", esdb.NoStream{}, jsonEvent("E", `{}`))
	mustAppend(t, c, "cart-later", esdb.NoStream{}, events(2, "E")...)
	expectMessages(t, sub, "e:cart-later@0", "e:cart-later@1")
}

func TestAllSubscriptionStarts(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-as", esdb.NoStream{}, events(3, "E")...)
	all := readAll(t, c, esdb.ReadAllOptions{}, 10)

	tests := []struct {
		name string
		from esdb.AllPosition
		want []string
	}{
		{"start", esdb.Start{}, []string{"e:cart-as@0", "e:cart-as@1", "e:cart-as@2", "caught-up"}},
		{"position is exclusive", all[1].OriginalEvent().Position, []string{"e:cart-as@2", "caught-up"}},
		{"end", esdb.End{}, []string{"caught-up"}},
	}
	subs := make([]*esdb.Subscription, len(tests))
	for i, tt := range tests {
		subs[i] = subscribeAll(t, c, esdb.SubscribeToAllOptions{From: tt.from})
		expectMessages(t, subs[i], tt.want...)
	}
	mustAppend(t, c, "cart-as", esdb.Revision(2), jsonEvent("E", `{}`))
	for i := range tests {
		expectMessages(t, subs[i], "e:cart-as@3")
	}
}

// Every subscriber sees every event exactly once and in $all order, whether
// it started before the writes, in the middle of them (catch-up racing live
// appends) or after them.
func TestSubscriptionsUnderConcurrentAppends(t *testing.T) {
	t.Parallel()
	s := Start(t)
	writers, appendsPerWriter := 4, 40
	if testing.Short() {
		appendsPerWriter = 10
	}
	clients := []*esdb.Client{newClient(t, s), newClient(t, s)}
	c := clients[0]

	type collected struct {
		name   string
		sub    *esdb.Subscription
		stream string // "" for $all
	}
	var subs []collected
	addSubs := func(stage string) {
		subs = append(subs,
			collected{name: stage + "/all-filtered", sub: subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: prefixFilter("cart-conc-")})},
			collected{name: stage + "/all", sub: subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}})},
			collected{name: stage + "/stream", sub: subscribeStream(t, c, "cart-conc-0", esdb.SubscribeToStreamOptions{From: esdb.Start{}}), stream: "cart-conc-0"},
		)
	}

	addSubs("before")
	var wg sync.WaitGroup
	started := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range appendsPerWriter {
				if w == 0 && i == appendsPerWriter/2 {
					close(started)
				}
				// Two writers share each stream; batches of 1-3 events.
				stream := fmt.Sprintf("cart-conc-%d", w%2)
				if _, err := clients[w%2].AppendToStream(testCtx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}},
					events(1+i%3, "E")...); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	<-started
	addSubs("during")
	wg.Wait()
	addSubs("after")
	if t.Failed() {
		return
	}

	// The expected sequences, and a sentinel that must be the very next
	// event each subscriber sees after them (a duplicate would come first).
	want := map[string][]string{}
	for _, e := range readAll(t, c, esdb.ReadAllOptions{}, 1<<20) {
		ev := e.OriginalEvent()
		key := fmt.Sprintf("e:%s@%d", ev.StreamID, ev.EventNumber)
		want[""] = append(want[""], key)
		if ev.StreamID == "cart-conc-0" {
			want["cart-conc-0"] = append(want["cart-conc-0"], key)
		}
	}
	mustAppend(t, c, "cart-conc-0", esdb.Any{}, jsonEvent("Sentinel", `{}`))
	sentinel := fmt.Sprintf("e:cart-conc-0@%d", len(want["cart-conc-0"]))

	var check sync.WaitGroup
	for _, cs := range subs {
		check.Add(1)
		go func() {
			defer check.Done()
			var got []string
			for len(got) < len(want[cs.stream])+1 {
				m := cs.sub.Recv()
				switch {
				case m.SubscriptionDropped != nil:
					t.Errorf("%s: dropped after %d events: %v", cs.name, len(got), m.SubscriptionDropped.Error)
					return
				case m.EventAppeared != nil:
					e := m.EventAppeared.OriginalEvent()
					got = append(got, fmt.Sprintf("e:%s@%d", e.StreamID, e.EventNumber))
				}
			}
			wantSeq := append(append([]string(nil), want[cs.stream]...), sentinel)
			if !equalSlices(got, wantSeq) {
				t.Errorf("%s: got %d events, want %d; first difference at %d", cs.name, len(got), len(wantSeq), firstDiff(got, wantSeq))
			}
		}()
	}
	check.Wait()
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestFilteredSubscriptionCheckpoints(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	// $all: [epoch] o1 o2 c1 o3 o4 o5 c2
	for i, stream := range []string{"other-1", "other-2", "cart-f", "other-3", "other-4", "other-5", "cart-f"} {
		mustAppend(t, c, stream, esdb.Any{}, jsonEvent("E", fmt.Sprintf(`{"i":%d}`, i)))
	}
	all := readAll(t, c, esdb.ReadAllOptions{}, 100)
	at := func(i int) string { return fmt.Sprintf("c:%d", all[i].OriginalEvent().Position.Commit) }

	// A checkpoint every MaxSearchWindow × CheckpointInterval = 2 records
	// considered, epoch included, at the last one considered (matching or
	// not); the end-of-catch-up checkpoint would repeat c2's and is skipped.
	sub := subscribeAll(t, c, esdb.SubscribeToAllOptions{
		From: esdb.Start{}, Filter: prefixFilter("cart-"), MaxSearchWindow: 2, CheckpointInterval: 1,
	})
	expectMessages(t, sub, at(0), "e:cart-f@0", at(2), at(4), "e:cart-f@1", at(6), "caught-up")
	mustAppend(t, c, "other-6", esdb.Any{}, jsonEvent("E", `{}`))
	mustAppend(t, c, "other-7", esdb.Any{}, jsonEvent("E", `{}`))
	mustAppend(t, c, "cart-f", esdb.Any{}, jsonEvent("E", `{}`))
	live := readAll(t, c, esdb.ReadAllOptions{From: esdb.End{}, Direction: esdb.Backwards}, 2)
	expectMessages(t, sub, fmt.Sprintf("c:%d", live[1].OriginalEvent().Position.Commit), "e:cart-f@2")

	// Resuming from a checkpoint on a non-matching record continues right
	// after it; catch-up ends with a checkpoint at the last record seen.
	resumed := subscribeAll(t, c, esdb.SubscribeToAllOptions{
		From: all[4].OriginalEvent().Position, Filter: prefixFilter("cart-"), MaxSearchWindow: 32, CheckpointInterval: 1,
	})
	expectMessages(t, resumed, "e:cart-f@1", "e:cart-f@2", fmt.Sprintf("c:%d", live[0].OriginalEvent().Position.Commit), "caught-up")

	// With the client's defaults (32 × 1) a short catch-up sends just the
	// final checkpoint.
	defaults := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: prefixFilter("cart-")})
	expectMessages(t, defaults, "e:cart-f@0", "e:cart-f@1", "e:cart-f@2", fmt.Sprintf("c:%d", live[0].OriginalEvent().Position.Commit), "caught-up")
}

func TestFilteredSubscriptionKinds(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-1", esdb.NoStream{}, jsonEvent("ItemAdded", `{}`), jsonEvent("ItemRemoved", `{}`), jsonEvent("CartCleared", `{}`))
	mustAppend(t, c, "cart-x", esdb.NoStream{}, jsonEvent("ItemAdded", `{}`))
	mustAppend(t, c, "order-1", esdb.NoStream{}, jsonEvent("OrderPlaced", `{}`))
	meta := esdb.StreamMetadata{}
	meta.SetMaxCount(5)
	if _, err := c.SetStreamMetadata(testCtx(t), "cart-1", esdb.AppendToStreamOptions{}, meta); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		filter *esdb.SubscriptionFilter
		want   []string
	}{
		{"stream prefix excludes system streams", prefixFilter("cart-"),
			[]string{"e:cart-1@0", "e:cart-1@1", "e:cart-1@2", "e:cart-x@0"}},
		{"several stream prefixes", prefixFilter("order-", "cart-x"),
			[]string{"e:cart-x@0", "e:order-1@0"}},
		{"stream regex", &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: "^cart-[0-9]+$"},
			[]string{"e:cart-1@0", "e:cart-1@1", "e:cart-1@2"}},
		// Like the server, an unanchored regex also matches system streams;
		// only $epoch-information is always hidden.
		{"unanchored regex matches the metadata stream", &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: "cart-1"},
			[]string{"e:cart-1@0", "e:cart-1@1", "e:cart-1@2", "e:$$cart-1@0"}},
		{"event type prefix", &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{"Item"}},
			[]string{"e:cart-1@0", "e:cart-1@1", "e:cart-x@0"}},
		{"event type regex", &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^(Cart|Order)"},
			[]string{"e:cart-1@2", "e:order-1@0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sub := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: tt.filter})
			var got []string
			for {
				m := message(t, sub)
				if m == "caught-up" {
					break
				}
				if strings.HasPrefix(m, "e:") {
					got = append(got, m)
				}
			}
			if !equalSlices(got, tt.want) {
				t.Fatalf("events = %v, want %v", got, tt.want)
			}
		})
	}
}

// A subscriber that does not read while a burst is written holds back only
// its own handler, through gRPC flow control: the writers are not blocked,
// the server keeps no backlog for it, and once it reads again it gets every
// event exactly once, in order. The raw client pins small flow-control
// windows so that the server really is held back.
func TestSlowSubscriberGetsEverything(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	sub, err := api.NewStreamsClient(conn).Read(testCtx(t), &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption: &api.ReadReq_Options_All{All: &api.ReadReq_Options_AllOptions{
			AllOption: &api.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption:  &api.ReadReq_Options_Subscription{Subscription: &api.ReadReq_Options_SubscriptionOptions{}},
		FilterOption: &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:   &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := sub.Recv(); err != nil || m.GetConfirmation() == nil {
		t.Fatalf("first message = %v, %v; want the confirmation", m, err)
	}

	n := 200
	if testing.Short() {
		n = 50
	}
	payload := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 16<<10)) // 50× the windows
	for range n {
		mustAppend(t, c, "cart-slow", esdb.Any{}, jsonEvent("E", payload))
	}
	next := uint64(0)
	for next < uint64(n) {
		m, err := sub.Recv()
		if err != nil {
			t.Fatalf("after %d events: %v", next, err)
		}
		e := m.GetEvent().GetEvent()
		if e == nil || string(e.GetStreamIdentifier().GetStreamName()) != "cart-slow" {
			continue // the caught-up marker, or the epoch record
		}
		if e.GetStreamRevision() != next {
			t.Fatalf("got revision %d, want %d", e.GetStreamRevision(), next)
		}
		next++
	}
}

func TestDropSubscriptions(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-drop", esdb.NoStream{}, jsonEvent("E", `{}`))
	subs := []*esdb.Subscription{
		subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: prefixFilter("cart-")}),
		subscribeStream(t, c, "cart-drop", esdb.SubscribeToStreamOptions{From: esdb.Start{}}),
	}
	for _, sub := range subs {
		expectEvents(t, sub, "e:cart-drop@0", "caught-up")
	}

	s.DropSubscriptions()
	for i, sub := range subs {
		m := sub.Recv()
		if m.SubscriptionDropped == nil || status.Code(m.SubscriptionDropped.Error) != codes.Unavailable {
			t.Fatalf("subscription %d: %+v, want a drop with Unavailable", i, m)
		}
	}

	// The connection is fine and new subscriptions are not affected.
	again := subscribeAll(t, c, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: prefixFilter("cart-")})
	expectEvents(t, again, "e:cart-drop@0", "caught-up")
	mustAppend(t, c, "cart-drop", esdb.Revision(0), jsonEvent("E", `{}`))
	expectMessages(t, again, "e:cart-drop@1")
}

func TestStreamSubscriptionEndsOnTombstone(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-tomb-sub", esdb.NoStream{}, jsonEvent("E", `{}`))
	sub := subscribeStream(t, c, "cart-tomb-sub", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	expectMessages(t, sub, "e:cart-tomb-sub@0", "caught-up")
	if _, err := c.TombstoneStream(testCtx(t), "cart-tomb-sub", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(0)}); err != nil {
		t.Fatal(err)
	}
	expectMessages(t, sub, "e:cart-tomb-sub@9223372036854775807")
	if m := sub.Recv(); m.SubscriptionDropped == nil || status.Code(m.SubscriptionDropped.Error) != codes.FailedPrecondition {
		t.Fatalf("after the tombstone: %+v, want a drop with FailedPrecondition", m)
	}

	// Subscribing to a tombstoned stream fails right after the confirmation.
	late := subscribeStream(t, c, "cart-tomb-sub", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	if m := late.Recv(); m.SubscriptionDropped == nil || status.Code(m.SubscriptionDropped.Error) != codes.FailedPrecondition {
		t.Fatalf("subscription to a tombstoned stream: %+v, want a drop with FailedPrecondition", m)
	}
}

func TestStreamSubscriptionOfSoftDeletedStream(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-soft-sub", esdb.NoStream{}, events(2, "E")...)
	if _, err := c.DeleteStream(testCtx(t), "cart-soft-sub", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(1)}); err != nil {
		t.Fatal(err)
	}
	sub := subscribeStream(t, c, "cart-soft-sub", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	expectMessages(t, sub, "caught-up")
	mustAppend(t, c, "cart-soft-sub", esdb.Any{}, jsonEvent("E", `{}`))
	expectMessages(t, sub, "e:cart-soft-sub@2")
}
