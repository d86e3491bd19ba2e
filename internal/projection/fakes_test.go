package projection

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// errDropped is what a fake subscription fails with when told to drop.
var errDropped = errors.New("subscription dropped")

// record is one entry of the fake $all: a cart event, or a record of
// another stream that the server-side filter skips (only its position shows,
// through checkpoints).
type record struct {
	ev     eventlog.Event
	hidden bool
}

// fakeLog is an in-memory $all with the subscription semantics the
// projector relies on: events strictly after the start position, server
// checkpoints every checkpointEvery records considered and before caught-up,
// then live events.
type fakeLog struct {
	mu              sync.Mutex
	recs            []record
	changed         chan struct{}
	checkpointEvery int
	// dropAfter[i] makes the i-th subscription (0-based) fail after
	// delivering that many messages.
	dropAfter  map[int]int
	subscribes []*eventlog.Position
	// blocked is signalled whenever a subscription waits for new records
	// after having delivered everything.
	blocked chan struct{}
	// ahead are events already in the log that no subscription has
	// delivered yet: only HeadEvent sees them until release.
	ahead []eventlog.Event
	// headErr, if set, fails HeadEvent.
	headErr error
}

func newFakeLog() *fakeLog {
	return &fakeLog{changed: make(chan struct{}), dropAfter: map[int]int{}, blocked: make(chan struct{}, 100)}
}

func (l *fakeLog) add(recs ...record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, recs...)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *fakeLog) addEvents(evs ...eventlog.Event) {
	for _, e := range evs {
		l.add(record{ev: e})
	}
}

func (l *fakeLog) Subscribe(_ context.Context, from *eventlog.Position) (eventlog.Subscription, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.subscribes)
	l.subscribes = append(l.subscribes, from)
	s := &fakeSub{log: l, closed: make(chan struct{}), dropAt: -1}
	if d, ok := l.dropAfter[n]; ok {
		s.dropAt = d
	}
	if from != nil {
		s.next = len(l.recs)
		for i, r := range l.recs {
			if from.Less(r.ev.Position) {
				s.next = i
				break
			}
		}
	}
	return s, nil
}

// HeadEvent implements HeadSource: the newest cart event, including those
// not delivered yet.
func (l *fakeLog) HeadEvent(context.Context) (eventlog.Event, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.headErr != nil {
		return eventlog.Event{}, false, l.headErr
	}
	if n := len(l.ahead); n > 0 {
		return l.ahead[n-1], true, nil
	}
	for i := len(l.recs) - 1; i >= 0; i-- {
		if !l.recs[i].hidden {
			return l.recs[i].ev, true, nil
		}
	}
	return eventlog.Event{}, false, nil
}

// addAhead appends events that subscriptions deliver only after release.
func (l *fakeLog) addAhead(evs ...eventlog.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ahead = append(l.ahead, evs...)
}

// release lets subscriptions deliver the events added with addAhead.
func (l *fakeLog) release() {
	l.mu.Lock()
	ahead := l.ahead
	l.ahead = nil
	l.mu.Unlock()
	l.addEvents(ahead...)
}

func (l *fakeLog) setHeadErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.headErr = err
}

func (l *fakeLog) subscriptions() []*eventlog.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.subscribes)
}

type fakeSub struct {
	log        *fakeLog
	next       int // index of the next record to consider
	considered int // records considered since the last checkpoint
	caughtUp   bool
	queue      []eventlog.Message
	delivered  int
	dropAt     int
	closeOnce  sync.Once
	closed     chan struct{}
}

func (s *fakeSub) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

func (s *fakeSub) Next(ctx context.Context) (eventlog.Message, error) {
	for {
		if s.dropAt >= 0 && s.delivered >= s.dropAt {
			return eventlog.Message{}, errDropped
		}
		if len(s.queue) > 0 {
			m := s.queue[0]
			s.queue = s.queue[1:]
			s.delivered++
			return m, nil
		}
		s.log.mu.Lock()
		recs, changed, every := s.log.recs, s.log.changed, s.log.checkpointEvery
		s.log.mu.Unlock()
		if s.next < len(recs) {
			r := recs[s.next]
			s.next++
			s.considered++
			if !r.hidden {
				ev := r.ev
				s.queue = append(s.queue, eventlog.Message{Event: &ev})
			}
			if every > 0 && s.considered >= every {
				pos := r.ev.Position
				s.queue = append(s.queue, eventlog.Message{Checkpoint: &pos})
				s.considered = 0
			}
			continue
		}
		if !s.caughtUp {
			s.caughtUp = true
			if s.considered > 0 {
				pos := recs[len(recs)-1].ev.Position
				s.queue = append(s.queue, eventlog.Message{Checkpoint: &pos})
				s.considered = 0
			}
			s.queue = append(s.queue, eventlog.Message{CaughtUp: true})
			continue
		}
		select {
		case s.log.blocked <- struct{}{}:
		default:
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

// fakeStore is an in-memory read model with the guard semantics of the real
// one, failure injection and an invariant check at every checkpoint.
type fakeStore struct {
	mu          sync.Mutex
	docs        map[string]CartDoc
	checkpoints map[string]eventlog.Position
	// fail, if set, may fail an operation: "load-checkpoint",
	// "save-checkpoint", "load" or "write".
	fail func(op string) error
	// beforeWrite, if set, runs (with the lock held) before each WriteCarts.
	beforeWrite func(docs map[string]CartDoc)
	// onCheckpoint, if set, checks the documents when a checkpoint is saved.
	onCheckpoint func(pos eventlog.Position, docs map[string]CartDoc) error
	violations   []string
	writeCalls   int
	saves        []eventlog.Position
	// loads and writes record the users of each LoadCarts call and the
	// writes of each WriteCarts call, in order.
	loads  [][]string
	writes [][]CartWrite
}

func newFakeStore() *fakeStore {
	return &fakeStore{docs: map[string]CartDoc{}, checkpoints: map[string]eventlog.Position{}}
}

func (s *fakeStore) check(op string) error {
	if s.fail == nil {
		return nil
	}
	return s.fail(op)
}

func (s *fakeStore) LoadCheckpoint(_ context.Context, name string) (*eventlog.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("load-checkpoint"); err != nil {
		return nil, err
	}
	if p, ok := s.checkpoints[name]; ok {
		return &p, nil
	}
	return nil, nil
}

func (s *fakeStore) SaveCheckpoint(_ context.Context, name string, pos eventlog.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("save-checkpoint"); err != nil {
		return err
	}
	if old, ok := s.checkpoints[name]; ok && pos.Less(old) {
		// The contract keeps the stored checkpoint; the projector never
		// asks this of a single store, so it counts as a violation here.
		s.violations = append(s.violations, fmt.Sprintf("checkpoint moved back from %v to %v", old, pos))
		return nil
	}
	if s.onCheckpoint != nil {
		if err := s.onCheckpoint(pos, s.docs); err != nil {
			s.violations = append(s.violations, err.Error())
		}
	}
	s.checkpoints[name] = pos
	s.saves = append(s.saves, pos)
	return nil
}

func (s *fakeStore) LoadCarts(_ context.Context, userIDs []string) (map[string]CartDoc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("load"); err != nil {
		return nil, err
	}
	s.loads = append(s.loads, slices.Clone(userIDs))
	out := map[string]CartDoc{}
	for _, u := range userIDs {
		if d, ok := s.docs[u]; ok {
			d.Cart = d.Cart.Clone()
			out[u] = d
		}
	}
	return out, nil
}

func (s *fakeStore) WriteCarts(_ context.Context, writes []CartWrite) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("write"); err != nil {
		return nil, err
	}
	s.writeCalls++
	s.writes = append(s.writes, slices.Clone(writes))
	if s.beforeWrite != nil {
		s.beforeWrite(s.docs)
	}
	var conflicts []string
	for _, w := range writes {
		cur, exists := s.docs[w.Doc.UserID]
		if w.Create && exists {
			// A refused create is always a conflict (see Store).
			conflicts = append(conflicts, w.Doc.UserID)
			continue
		}
		if !w.Create && (!exists || cur.Version != w.ExpectedVersion) {
			if !exists || cur.Version != w.Doc.Version {
				conflicts = append(conflicts, w.Doc.UserID)
			}
			continue
		}
		d := w.Doc
		d.Cart = d.Cart.Clone()
		s.docs[d.UserID] = d
	}
	return conflicts, nil
}

func (s *fakeStore) doc(userID string) (CartDoc, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[userID]
	return d, ok
}

func (s *fakeStore) snapshot() (map[string]CartDoc, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.docs), slices.Clone(s.violations)
}

// fakeParker records what it is given and can fail the first calls.
type fakeParker struct {
	mu     sync.Mutex
	parked []parkedEvent
	failN  int
}

type parkedEvent struct {
	ev    eventlog.Event
	cause error
}

func (f *fakeParker) Park(_ context.Context, ev eventlog.Event, cause error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failN > 0 {
		f.failN--
		return errors.New("parking lot unavailable")
	}
	f.parked = append(f.parked, parkedEvent{ev, cause})
	return nil
}

func (f *fakeParker) events() []parkedEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.parked)
}

// eventBuilder numbers events like $all and their streams do.
type eventBuilder struct {
	t   testing.TB
	pos uint64
	rev map[string]int64
}

func newBuilder(t testing.TB) *eventBuilder {
	return &eventBuilder{t: t, pos: 100, rev: map[string]int64{}}
}

func (b *eventBuilder) nextPos() eventlog.Position {
	b.pos += 10
	return eventlog.Position{Commit: b.pos, Prepare: b.pos}
}

// event makes the user's next event.
func (b *eventBuilder) event(user string, e cart.Event) eventlog.Event {
	b.t.Helper()
	data, err := cart.Marshal(e)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.raw(user, e.Type(), data)
}

// raw makes the user's next event with the given type and data.
func (b *eventBuilder) raw(user, typ string, data []byte) eventlog.Event {
	b.t.Helper()
	meta, err := cart.MarshalMetadata(cart.Metadata{CommandID: "cmd", CommandType: "Test", Time: time.Unix(1700000000, 0).UTC()})
	if err != nil {
		b.t.Fatal(err)
	}
	r, ok := b.rev[user]
	if !ok {
		r = -1
	}
	r++
	b.rev[user] = r
	pos := b.nextPos()
	return eventlog.Event{
		StreamID: "cart-" + user, UserID: user, Revision: r, Position: pos,
		EventID: fmt.Sprintf("ev-%s-%d", user, r), Type: typ, Data: data, Metadata: meta,
		Created: time.Unix(1700000000+int64(pos.Commit), 0).UTC(),
	}
}

// hidden makes a record of another stream, skipped by the filter.
func (b *eventBuilder) hidden() record {
	return record{ev: eventlog.Event{StreamID: "other", Position: b.nextPos()}, hidden: true}
}

func add(p string, q int) cart.ItemAdded {
	return cart.ItemAdded{ProductID: p, Quantity: q, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 2, Nanos: 500_000_000}}
}

// fold is what the read model must hold for a user's events: the fold of
// every decodable event up to the first gap or poison event.
func fold(t testing.TB, evs []eventlog.Event, user string) CartDoc {
	t.Helper()
	d := CartDoc{UserID: user, Version: -1}
	for _, ev := range evs {
		if ev.UserID != user || ev.Revision != d.Version+1 {
			continue
		}
		e, err := cart.Unmarshal(ev.Type, ev.Data)
		if err != nil {
			break
		}
		d.Cart = d.Cart.Apply(e)
		d.Version = ev.Revision
		d.UpdatedAt = ev.Created
	}
	return d
}
