package standin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// shortStall is the slow-subscriber timeout of these tests: long against
// anything a reading client does, short enough to keep the tests fast.
const shortStall = 300 * time.Millisecond

// bigEvents returns n events of 64 KiB each: a few of them fill the
// flow-control windows between the server and a client that does not read.
func bigEvents(n int) []esdb.EventData {
	payload := []byte(strings.Repeat("x", 64<<10))
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = esdb.EventData{EventType: "Big", ContentType: esdb.ContentTypeBinary, Data: payload}
	}
	return out
}

// waitFor polls cond for up to 20 s, for things that happen asynchronously
// on the server; the deadline only bounds a hang.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A subscriber that stops reading while large events are written is dropped
// once a send to it has been blocked for the timeout, and its server
// goroutine ends. When it reads again it gets the events that were already
// on their way, in order, then the drop with ResourceExhausted; resubscribing
// from the last event it saw gives it the rest.
func TestStalledSubscriberIsDropped(t *testing.T) {
	t.Parallel()
	const total = 200 // 12.5 MiB: far more than the windows hold

	tests := []struct {
		name      string
		subscribe func(t *testing.T, c *esdb.Client, after *uint64) *esdb.Subscription
	}{
		{"stream", func(t *testing.T, c *esdb.Client, after *uint64) *esdb.Subscription {
			from := esdb.StreamPosition(esdb.Start{})
			if after != nil {
				from = esdb.Revision(*after)
			}
			return subscribeStream(t, c, "cart-stall", esdb.SubscribeToStreamOptions{From: from})
		}},
		{"filtered $all", func(t *testing.T, c *esdb.Client, after *uint64) *esdb.Subscription {
			opts := esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: prefixFilter("cart-")}
			if after != nil {
				evs, err := readStream(t, c, "cart-stall", esdb.ReadStreamOptions{From: esdb.Revision(*after)}, 1)
				if err != nil || len(evs) != 1 {
					t.Fatalf("read cart-stall@%d: %d events, %v", *after, len(evs), err)
				}
				opts.From = evs[0].OriginalEvent().Position
			}
			return subscribeAll(t, c, opts)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := Start(t, WithSlowSubscriberTimeout(shortStall))
			c := newClient(t, s)
			sub := tt.subscribe(t, c, nil)
			expectEvents(t, sub, "caught-up")
			if got := s.ActiveSubscriptions(); got != 1 {
				t.Fatalf("ActiveSubscriptions = %d, want 1", got)
			}

			// The subscriber does not read from here on. The writer stops
			// early once the server has dropped it.
			written := uint64(0)
			for ; written < total && s.ActiveSubscriptions() > 0; written += 8 {
				mustAppend(t, c, "cart-stall", esdb.Any{}, bigEvents(8)...)
			}
			waitFor(t, "the stalled subscription to end on the server", func() bool { return s.ActiveSubscriptions() == 0 })

			// Reading again: what was in flight, in order, then the drop.
			next := uint64(0)
			for {
				m := sub.Recv()
				if m.SubscriptionDropped != nil {
					err := m.SubscriptionDropped.Error
					if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "subscriber too slow") {
						t.Fatalf("dropped with %v, want ResourceExhausted: subscriber too slow", err)
					}
					break
				}
				if m.EventAppeared == nil {
					t.Fatalf("unexpected message %+v", m)
				}
				if e := m.EventAppeared.OriginalEvent(); e.StreamID != "cart-stall" || e.EventNumber != next {
					t.Fatalf("got %s@%d, want cart-stall@%d", e.StreamID, e.EventNumber, next)
				}
				next++
			}
			if next == 0 || next >= written {
				t.Fatalf("got %d events before the drop, want some but not all %d", next, written)
			}

			// The connection is fine: resuming after the last event seen
			// delivers the rest to a subscriber that reads.
			last := next - 1
			resumed := tt.subscribe(t, c, &last)
			for next < written {
				e := nextEvent(t, resumed).OriginalEvent()
				if e.StreamID != "cart-stall" || e.EventNumber != next {
					t.Fatalf("resumed: got %s@%d, want cart-stall@%d", e.StreamID, e.EventNumber, next)
				}
				next++
			}
			if got := s.ActiveSubscriptions(); got != 1 {
				t.Fatalf("ActiveSubscriptions = %d after resubscribing, want 1", got)
			}
		})
	}
}

// A subscriber that keeps reading is never dropped, with the same short
// timeout and the same burst of large events that stalls one that does not
// read. Not parallel: the burst should meet a reader that has a CPU, not one
// starved by the rest of the suite under -race.
func TestReadingSubscriberIsNotDropped(t *testing.T) {
	total := 200
	if testing.Short() {
		total = 64
	}
	s := Start(t, WithSlowSubscriberTimeout(shortStall))
	c := newClient(t, s)
	sub := subscribeStream(t, c, "cart-reader", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	expectMessages(t, sub, "caught-up")

	var wg sync.WaitGroup
	defer wg.Wait() // also on a failure below, before the server stops
	wg.Go(func() {
		for written := 0; written < total; written += 8 {
			if _, err := c.AppendToStream(testCtx(t), "cart-reader", esdb.AppendToStreamOptions{}, bigEvents(8)...); err != nil {
				t.Errorf("append: %v", err)
				return
			}
		}
	})
	for next := uint64(0); next < uint64(total); next++ {
		if e := nextEvent(t, sub).OriginalEvent(); e.EventNumber != next {
			t.Fatalf("got cart-reader@%d, want @%d", e.EventNumber, next)
		}
	}
	wg.Wait()
	if got := s.ActiveSubscriptions(); got != 1 {
		t.Fatalf("ActiveSubscriptions = %d, want 1", got)
	}
	mustAppend(t, c, "cart-reader", esdb.Revision(uint64(total-1)), jsonEvent("E", `{}`))
	expectMessages(t, sub, fmt.Sprintf("e:cart-reader@%d", total))
}

// blockingStream is a Streams_ReadServer whose Send blocks until release is
// closed, like a send to a client whose window is full (for 20 s at most); it
// counts the sends that reach it.
type blockingStream struct {
	api.Streams_ReadServer // nil: only Send and Context are used
	ctx                    context.Context
	release                chan struct{}

	mu    sync.Mutex
	sends int
}

func (b *blockingStream) Context() context.Context { return b.ctx }

func (b *blockingStream) Send(*api.ReadResp) error {
	b.mu.Lock()
	b.sends++
	b.mu.Unlock()
	select {
	case <-b.release:
		return errors.New("stream finished")
	case <-time.After(20 * time.Second): // bounds a hang if nothing gives up on the send
		return errors.New("blocked send never released")
	}
}

// Once the handler has given up on a blocked send it returns at once, and
// the loop, when its send finally fails, gets the drop error and cannot
// reach the stream again; only then does ActiveSubscriptions fall.
func TestStallGuardAbandonsBlockedSend(t *testing.T) {
	t.Parallel()
	c := newSubscriptionControl(nil, time.Millisecond)
	fake := &blockingStream{ctx: t.Context(), release: make(chan struct{})}
	loopErr := make(chan [2]error, 1)
	err := c.run(fake, func(srv api.Streams_ReadServer) error {
		first := srv.Send(caughtUpMsg)
		loopErr <- [2]error{first, srv.Send(caughtUpMsg)}
		return first
	})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("run = %v, want ResourceExhausted", err)
	}
	if got := c.active.Load(); got != 1 {
		t.Fatalf("active = %d while the send is still blocked, want 1", got)
	}

	close(fake.release) // what the transport does once the handler returns
	errs := <-loopErr
	for i, e := range errs {
		if status.Code(e) != codes.ResourceExhausted {
			t.Errorf("loop's send %d = %v, want the drop error", i+1, e)
		}
	}
	if fake.sends != 1 {
		t.Errorf("%d sends reached the stream, want 1", fake.sends)
	}
	waitFor(t, "the loop to end", func() bool { return c.active.Load() == 0 })
}

func TestSlowSubscriberTimeoutConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  time.Duration
		want time.Duration
	}{
		{"zero means the default", 0, DefaultSlowSubscriberTimeout},
		{"explicit", time.Second, time.Second},
		{"negative disables", -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := Start(t, WithSlowSubscriberTimeout(tt.set))
			if got := s.subs.slowTimeout; got != tt.want {
				t.Fatalf("slow-subscriber timeout = %v, want %v", got, tt.want)
			}
		})
	}
}
