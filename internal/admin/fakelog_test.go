package admin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// fakeLog is an in-memory event log: the projectors' Source (catch-up,
// a checkpoint and caught-up, then live events) and the operations'
// EventLog. Only cart events are stored.
type fakeLog struct {
	mu      sync.Mutex
	evs     []eventlog.Event
	revs    map[string]int64
	pos     uint64
	changed chan struct{}
}

func newFakeLog() *fakeLog {
	return &fakeLog{revs: map[string]int64{}, pos: 1000, changed: make(chan struct{})}
}

// appendRaw appends an event with the given type and data to the user's stream.
func (l *fakeLog) appendRaw(t testing.TB, user, typ string, data []byte) eventlog.Event {
	t.Helper()
	meta, err := cart.MarshalMetadata(cart.Metadata{CommandID: "c", CommandType: "Test", Time: time.Unix(1700000000, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rev, ok := l.revs[user]
	if !ok {
		rev = -1
	}
	rev++
	l.revs[user] = rev
	l.pos += 100
	ev := eventlog.Event{
		StreamID: "cart-" + user, UserID: user, Revision: rev,
		Position: eventlog.Position{Commit: l.pos, Prepare: l.pos},
		EventID:  fmt.Sprintf("%s-%d", user, rev), Type: typ, Data: data, Metadata: meta,
		Created: time.UnixMilli(1_700_000_000_000 + int64(l.pos)).UTC(),
	}
	l.evs = append(l.evs, ev)
	close(l.changed)
	l.changed = make(chan struct{})
	return ev
}

// append appends a domain event to the user's stream.
func (l *fakeLog) append(t testing.TB, user string, e cart.Event) eventlog.Event {
	t.Helper()
	data, err := cart.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return l.appendRaw(t, user, e.Type(), data)
}

func (l *fakeLog) snapshot() ([]eventlog.Event, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.evs, l.changed
}

// HeadPosition implements EventLog.
func (l *fakeLog) HeadPosition(context.Context) (eventlog.Position, error) {
	evs, _ := l.snapshot()
	if len(evs) == 0 {
		return eventlog.Position{}, nil
	}
	p := evs[len(evs)-1].Position
	return eventlog.Position{Commit: p.Commit, Prepare: p.Prepare}, nil
}

// ReadStream implements EventLog.
func (l *fakeLog) ReadStream(_ context.Context, userID string, from int64, count int) ([]eventlog.Event, error) {
	evs, _ := l.snapshot()
	var out []eventlog.Event
	for _, e := range evs {
		if e.UserID != userID || e.Revision < from || (count > 0 && len(out) == count) {
			continue
		}
		out = append(out, eventlog.Event{
			StreamID: e.StreamID, UserID: e.UserID, Revision: e.Revision,
			Position: eventlog.Position{Commit: e.Position.Commit, Prepare: e.Position.Prepare},
			EventID:  e.EventID, Type: e.Type, Data: e.Data, Metadata: e.Metadata, Created: e.Created,
		})
	}
	return out, nil
}

// Subscribe implements projection.Source.
func (l *fakeLog) Subscribe(_ context.Context, from *eventlog.Position) (eventlog.Subscription, error) {
	evs, _ := l.snapshot()
	s := &fakeSub{log: l, closed: make(chan struct{})}
	if from != nil {
		s.next = len(evs)
		for i, e := range evs {
			if from.Less(e.Position) {
				s.next = i
				break
			}
		}
	}
	return s, nil
}

type fakeSub struct {
	log       *fakeLog
	next      int
	caughtUp  int // 0: catching up, 1: checkpoint sent, 2: caught-up sent
	closeOnce sync.Once
	closed    chan struct{}
}

func (s *fakeSub) Next(ctx context.Context) (eventlog.Message, error) {
	for {
		evs, changed := s.log.snapshot()
		if s.next < len(evs) {
			e := evs[s.next]
			s.next++
			return eventlog.Message{Event: &e}, nil
		}
		switch s.caughtUp {
		case 0:
			s.caughtUp = 1
			if len(evs) > 0 {
				p := evs[len(evs)-1].Position
				return eventlog.Message{Checkpoint: &p}, nil
			}
			continue
		case 1:
			s.caughtUp = 2
			return eventlog.Message{CaughtUp: true}, nil
		}
		select {
		case <-changed:
		case <-s.closed:
			return eventlog.Message{}, errors.New("subscription closed")
		case <-ctx.Done():
			return eventlog.Message{}, ctx.Err()
		}
	}
}

func (s *fakeSub) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}
