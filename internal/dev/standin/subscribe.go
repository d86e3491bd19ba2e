package standin

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// subscriptionControl runs catch-up subscriptions and lets the server end
// them: all at once for a fault-injection test, on shutdown, or one by one
// when a client stops reading (see run).
//
// A subscription is a cursor over the committed log. It sends what is
// committed after the cursor, then waits for the next commit. Catch-up and
// live are the same loop, so no event can fall between them or be sent
// twice, and there is no per-subscriber buffer to overflow: a slow client
// holds its own handler back through gRPC flow control. This matches what the
// real server guarantees to clients (it drops its internal live buffer and
// re-reads when a subscriber falls behind; it does not end the
// subscription), while costing the stand-in no memory per slow subscriber.
// Only a client whose window stays full for slowTimeout is dropped.
type subscriptionControl struct {
	store       *store
	slowTimeout time.Duration // < 0: never drop a stalled subscriber
	active      atomic.Int64  // subscription loops still running

	mu      sync.Mutex
	drop    chan struct{} // closed by dropAll, then replaced
	closing chan struct{} // closed by shutdown
	closed  bool
}

func newSubscriptionControl(st *store, slowTimeout time.Duration) *subscriptionControl {
	return &subscriptionControl{store: st, slowTimeout: slowTimeout, drop: make(chan struct{}), closing: make(chan struct{})}
}

func (c *subscriptionControl) signals() (drop, closing <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drop, c.closing
}

// dropAll ends every subscription open now with an error; later ones are
// unaffected.
func (c *subscriptionControl) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.drop)
	c.drop = make(chan struct{})
}

// shutdown ends every subscription, open or future, so that a graceful stop
// does not wait for them forever.
func (c *subscriptionControl) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.closing)
	}
}

var (
	errDropped      = status.Error(codes.Unavailable, "subscription dropped by the stand-in server (fault injection)")
	errShuttingDown = status.Error(codes.Unavailable, "Server Is Shutting Down")
)

// sub holds what every subscription loop needs.
type sub struct {
	srv           api.Streams_ReadServer
	drop, closing <-chan struct{}
}

// interrupted reports, without blocking, why the subscription must end.
func (s *sub) interrupted() error {
	select {
	case <-s.srv.Context().Done():
		return status.FromContextError(s.srv.Context().Err()).Err()
	case <-s.drop:
		return errDropped
	case <-s.closing:
		return errShuttingDown
	default:
		return nil
	}
}

// wait blocks until the next commit or until the subscription must end.
func (s *sub) wait(changed <-chan struct{}) error {
	select {
	case <-changed:
		return nil
	case <-s.srv.Context().Done():
		return status.FromContextError(s.srv.Context().Err()).Err()
	case <-s.drop:
		return errDropped
	case <-s.closing:
		return errShuttingDown
	}
}

func (c *subscriptionControl) begin(srv api.Streams_ReadServer) (*sub, error) {
	drop, closing := c.signals()
	s := &sub{srv: srv, drop: drop, closing: closing}
	if err := s.interrupted(); err != nil {
		return nil, err
	}
	err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString(),
	}}})
	return s, err
}

// run runs a subscription loop and drops the subscription with
// ResourceExhausted when one Send stays blocked for slowTimeout.
//
// A Send blocks while the client's HTTP/2 flow-control window is full, and
// grpc-go offers no way to interrupt it other than ending the call: only
// when the handler returns does the transport finish the stream, cancel its
// context and so fail the blocked Send. So the loop runs in a goroutine of
// its own and the handler goroutine keeps the watch, returning the error
// itself when a Send overstays. That is the one point where Send and the
// handler's return overlap; grpc-go supports it (the transport calls are
// synchronised, which is how a handler's return unblocks a Send made from
// another goroutine), and stallGuard makes sure the loop never starts a
// Send, nor touches the stream otherwise, once the handler has given up.
// The loop then ends as soon as its Send fails, so nothing leaks; active
// counts it until it has.
//
// The status is written behind the data already queued, so a client that
// reads again gets those events first and then the drop, and can resume
// from the last one it saw.
func (c *subscriptionControl) run(srv api.Streams_ReadServer, loop func(api.Streams_ReadServer) error) error {
	c.active.Add(1)
	if c.slowTimeout < 0 {
		defer c.active.Add(-1)
		return loop(srv)
	}
	g := &stallGuard{Streams_ReadServer: srv, timeout: c.slowTimeout, timer: time.NewTimer(c.slowTimeout)}
	g.timer.Stop()
	done := make(chan error, 1)
	go func() {
		defer c.active.Add(-1)
		done <- loop(g)
	}()
	for {
		select {
		case err := <-done:
			return err
		case <-g.timer.C:
			if err := g.expire(time.Now()); err != nil {
				return err
			}
		}
	}
}

// stallGuard arms a timer around every Send of a subscription and, once the
// handler has given up on a Send (expire), keeps the loop off the stream.
type stallGuard struct {
	api.Streams_ReadServer
	timeout time.Duration
	timer   *time.Timer // armed only while a Send is in progress

	mu      sync.Mutex
	sending bool
	since   time.Time // when the Send in progress began
	dropped error     // set by expire; from then on the loop must not use the stream
}

func (g *stallGuard) Send(m *api.ReadResp) error {
	g.mu.Lock()
	if g.dropped != nil {
		g.mu.Unlock()
		return g.dropped
	}
	g.sending, g.since = true, time.Now()
	g.timer.Reset(g.timeout)
	g.mu.Unlock()

	err := g.Streams_ReadServer.Send(m)

	g.mu.Lock()
	defer g.mu.Unlock()
	g.timer.Stop()
	g.sending = false
	if g.dropped != nil {
		return g.dropped
	}
	return err
}

// expire is called when the timer fires. It returns the error to end the
// call with if a Send has now been blocked for the whole timeout. The timer
// may have fired for a Send that has since returned (nothing to do) or be
// observed only after the next Send began (re-armed for what that Send has
// left), so a Send is dropped only for its own stall.
func (g *stallGuard) expire(now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.sending {
		return nil
	}
	if left := g.timeout - now.Sub(g.since); left > 0 {
		g.timer.Reset(left)
		return nil
	}
	g.dropped = status.Errorf(codes.ResourceExhausted, "subscriber too slow: send blocked for %v", g.timeout)
	return g.dropped
}

var caughtUpMsg = &api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}

func checkpointMsg(pos uint64) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
		CommitPosition: pos, PreparePosition: pos,
	}}}
}

func subscriptionStart(so *api.ReadReq_Options_StreamOptions) revisionFrom {
	switch v := so.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Start:
		return revisionFrom{start: true}
	case *api.ReadReq_Options_StreamOptions_Revision:
		return revisionFrom{revision: v.Revision}
	default:
		return revisionFrom{end: true}
	}
}

func allStart(ao *api.ReadReq_Options_AllOptions) allFrom {
	switch v := ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		return allFrom{start: true}
	case *api.ReadReq_Options_AllOptions_Position:
		return allFrom{pos: v.Position.GetCommitPosition()}
	default:
		return allFrom{end: true}
	}
}

// subscribeStream sends a stream's events after the start (exclusive), then
// caught_up, then new events as they are committed. Catch-up honours the
// stream's metadata like a read does (a soft-deleted stream has nothing to
// catch up on); live events are sent as written, as the server pushes them.
// A tombstone ends the subscription with stream-deleted: immediately if the
// stream is already tombstoned, after the $streamDeleted event if it is
// tombstoned while live.
func (c *subscriptionControl) subscribeStream(srv api.Streams_ReadServer, name string, from revisionFrom, enc encoder) error {
	return c.run(srv, func(srv api.Streams_ReadServer) error { return c.streamLoop(srv, name, from, enc) })
}

func (c *subscriptionControl) streamLoop(srv api.Streams_ReadServer, name string, from revisionFrom, enc encoder) error {
	view := c.store.streamView(name)
	var next int64 // the next revision to send
	switch {
	case from.start:
		next = 0
	case from.end:
		next = int64(len(view.events))
	default:
		next = clampRevision(from.revision) + 1
	}
	s, err := c.begin(srv)
	if err != nil {
		return err
	}
	caughtUp := false
	for {
		if !caughtUp {
			if view.tombstone != nil {
				return streamDeletedStatus(srv.Context(), name)
			}
			if view.meta.tb == deletedStream {
				next = max(next, int64(len(view.events)))
			} else {
				next = max(next, visibleFrom(view.meta, view.cur))
			}
		}
		var cutoff int64
		if !caughtUp && view.meta.maxAge > 0 {
			cutoff = ticks(c.store.now().Add(-view.meta.maxAge))
		}
		for ; next < int64(len(view.events)); next++ {
			r := view.events[next]
			if !caughtUp && r.created < cutoff {
				continue
			}
			if err := s.interrupted(); err != nil {
				return err
			}
			if err := srv.Send(enc.event(r)); err != nil {
				return err
			}
		}
		if view.tombstone != nil {
			if err := srv.Send(enc.event(view.tombstone)); err != nil {
				return err
			}
			return streamDeletedStatus(srv.Context(), name)
		}
		if !caughtUp {
			if err := srv.Send(caughtUpMsg); err != nil {
				return err
			}
			caughtUp = true
		}
		if err := s.wait(view.changed); err != nil {
			return err
		}
		view = c.store.streamView(name)
	}
}

// subscribeAll sends $all records after the start (exclusive) that pass the
// filter, then caught_up, then new records as they are committed.
//
// With a filter (interval > 0), it also sends a checkpoint each time interval
// records (max search window × checkpointIntervalMultiplier) have been
// considered — matching or not, system records included — carrying the
// position of the last record considered, and one more when catch-up ends
// (before caught_up) if catch-up considered anything, as the server's
// AllSubscriptionFiltered does. A checkpoint is never sent twice for the same
// position.
func (c *subscriptionControl) subscribeAll(srv api.Streams_ReadServer, from allFrom, filter *eventFilter, interval uint64, enc encoder) error {
	return c.run(srv, func(srv api.Streams_ReadServer) error { return c.allLoop(srv, from, filter, interval, enc) })
}

func (c *subscriptionControl) allLoop(srv api.Streams_ReadServer, from allFrom, filter *eventFilter, interval uint64, enc encoder) error {
	log, _ := c.store.logView()
	var idx int
	switch {
	case from.start:
		idx = 0
	case from.end:
		idx = len(log)
	default:
		idx = sort.Search(len(log), func(i int) bool { return log[i].pos > from.pos })
	}
	s, err := c.begin(srv)
	if err != nil {
		return err
	}
	var (
		caughtUp   bool
		considered uint64 // since the last checkpoint
		lastSeen   uint64 // position of the last record considered
		sent       uint64 // position of the last checkpoint sent
	)
	sendCheckpoint := func(pos uint64) error {
		considered = 0
		if pos <= sent {
			return nil
		}
		sent = pos
		return srv.Send(checkpointMsg(pos))
	}
	for {
		log, changed := c.store.logView()
		for ; idx < len(log); idx++ {
			r := log[idx]
			if err := s.interrupted(); err != nil {
				return err
			}
			if filter.allow(r) {
				if err := srv.Send(enc.event(r)); err != nil {
					return err
				}
			}
			if interval == 0 {
				continue
			}
			considered++
			lastSeen = r.pos
			if considered >= interval {
				if err := sendCheckpoint(r.pos); err != nil {
					return err
				}
			}
		}
		if !caughtUp {
			if interval > 0 && lastSeen > 0 {
				if err := sendCheckpoint(lastSeen); err != nil {
					return err
				}
			}
			if err := srv.Send(caughtUpMsg); err != nil {
				return err
			}
			caughtUp = true
		}
		if err := s.wait(changed); err != nil {
			return err
		}
	}
}
