package standin

import (
	"sort"
	"sync"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// subscriptionControl runs catch-up subscriptions and lets the server end
// them: all at once for a fault-injection test, or on shutdown.
//
// A subscription is a cursor over the committed log. It sends what is
// committed after the cursor, then waits for the next commit. Catch-up and
// live are the same loop, so no event can fall between them or be sent
// twice, and there is no per-subscriber buffer to overflow: a slow client
// holds its own handler back through gRPC flow control. This matches what the
// real server guarantees to clients (it drops its internal live buffer and
// re-reads when a subscriber falls behind; it does not end the
// subscription), while costing the stand-in no memory per slow subscriber.
type subscriptionControl struct {
	store *store

	mu      sync.Mutex
	drop    chan struct{} // closed by dropAll, then replaced
	closing chan struct{} // closed by shutdown
	closed  bool
}

func newSubscriptionControl(st *store) *subscriptionControl {
	return &subscriptionControl{store: st, drop: make(chan struct{}), closing: make(chan struct{})}
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
