package projection_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/dev/netfault"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readmodel"
)

// stack is an EventStoreDB stand-in and an embedded FerretDB with the real
// adapters on them, the read model reached through a proxy that a test can
// take down.
type stack struct {
	t     *testing.T
	esdb  *standin.Server
	es    *eventstore.Store
	mongo *netfault.Proxy
	store *readmodel.Store
}

func newStack(t *testing.T) *stack {
	t.Helper()
	esdb := standin.Start(t)
	es, err := eventstore.Open(context.Background(), esdb.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	fdb := embeddedmongo.StartForTest(t)
	px := netfault.Start(t, strings.TrimSuffix(strings.TrimPrefix(fdb.URI(), "mongodb://"), "/"))
	client, err := readmodel.ConnectWith(context.Background(), "mongodb://"+px.Addr()+"/?serverSelectionTimeoutMS=500", readmodel.FerretDBCompat())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Close(ctx)
	})
	return &stack{t: t, esdb: esdb, es: es, mongo: px, store: client.Store("cart", readmodel.Collections{})}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// append writes events to a user's stream at its current end.
func (s *stack) append(user string, events ...cart.Event) {
	s.t.Helper()
	ctx := ctxT(s.t)
	cur, err := s.es.ReadStream(ctx, user, 0, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	meta := cart.Metadata{CommandID: fmt.Sprintf("%s-%d", user, len(cur)), CommandType: "Test", Time: time.Now().UTC()}
	if _, err := s.es.AppendEvents(ctx, user, int64(len(cur))-1, meta, events); err != nil {
		s.t.Fatal(err)
	}
}

// runProjector runs a projector until the returned stop is called or the test ends.
func (s *stack) runProjector(batch int) (*projection.Projector, func()) {
	s.t.Helper()
	p, err := projection.New(projection.Config{
		Source: s.es, Store: s.store, BatchSize: batch,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			s.t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	s.t.Cleanup(stop)
	return p, stop
}

// waitCaughtUp waits until the projector has stored everything up to the
// head of the log.
func (s *stack) waitCaughtUp(p *projection.Projector) {
	s.t.Helper()
	head, err := s.es.HeadPosition(ctxT(s.t))
	if err != nil {
		s.t.Fatal(err)
	}
	target := head
	if err := p.WaitUntil(ctxT(s.t), func(pr projection.Progress) bool {
		return pr.CaughtUp && pr.Checkpoint != nil && !pr.Checkpoint.Less(target)
	}); err != nil {
		s.t.Fatalf("projector did not reach %v: %v (progress %+v)", target, err, p.Progress())
	}
}

// assertMatchesLog checks every user's document against a fresh fold of the
// user's stream: the events up to the first one that does not decode.
func (s *stack) assertMatchesLog(users ...string) {
	s.t.Helper()
	ctx := ctxT(s.t)
	for _, u := range users {
		evs, err := s.es.ReadStream(ctx, u, 0, 0)
		if err != nil {
			s.t.Fatal(err)
		}
		want := projection.CartDoc{UserID: u, Version: -1}
		for _, ev := range evs {
			e, err := cart.Unmarshal(ev.Type, ev.Data)
			if err != nil {
				want.Stale = true
				break
			}
			want.Cart = want.Cart.Apply(e)
			want.Version = ev.Revision
			want.UpdatedAt = ev.Created.Truncate(time.Millisecond).UTC()
		}
		got, ok, err := s.store.GetCart(ctx, u)
		if err != nil || !ok {
			s.t.Fatalf("GetCart(%s) = %v, %v", u, ok, err)
		}
		got.StaleReason = ""
		if !reflect.DeepEqual(got, want) {
			s.t.Errorf("read model of %s = %+v\nfold of its stream = %+v", u, got, want)
		}
	}
}

func eur(units int64) cart.Money {
	return cart.Money{CurrencyCode: "EUR", Units: units, Nanos: 250_000_000}
}

// traffic appends a varied round of events for each user.
func (s *stack) traffic(round int, users ...string) {
	s.t.Helper()
	for i, u := range users {
		p := fmt.Sprintf("sku-%d", (round+i)%3)
		switch round % 4 {
		case 0:
			s.append(u, cart.ItemAdded{ProductID: p, Quantity: 1 + i, UnitPrice: eur(int64(3 + round))})
		case 1:
			s.append(u, cart.ItemAdded{ProductID: "sku-x", Quantity: 2, UnitPrice: eur(1)},
				cart.ItemQuantityChanged{ProductID: "sku-x", Quantity: 5})
		case 2:
			s.append(u, cart.ItemRemoved{ProductID: "sku-x"})
		case 3:
			if i%2 == 0 {
				s.append(u, cart.CartCleared{})
			} else {
				s.append(u, cart.ItemAdded{ProductID: p, Quantity: 1, UnitPrice: eur(2)})
			}
		}
	}
}

var users = []string{"alice", "bob", "carol"}

func TestProjectorRestartMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	s := newStack(t)
	for r := range 4 {
		s.traffic(r, users...)
	}
	p1, stop1 := s.runProjector(4)
	// Stop the first projector somewhere in the middle, more events arriving.
	if err := p1.WaitUntil(ctxT(t), func(pr projection.Progress) bool { return pr.EventsProcessed >= 4 }); err != nil {
		t.Fatal(err)
	}
	s.traffic(4, users...)
	stop1()
	s.traffic(5, users...)

	p2, _ := s.runProjector(4)
	s.traffic(6, users...)
	s.waitCaughtUp(p2)
	s.assertMatchesLog(users...)
	if pr := p2.Progress(); pr.EventsParked != 0 {
		t.Errorf("progress = %+v, want nothing parked", pr)
	}
}

func TestProjectorSurvivesDroppedSubscriptionAndMongoOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	s := newStack(t)
	s.traffic(0, users...)
	p, _ := s.runProjector(0)
	s.waitCaughtUp(p)

	// EventStoreDB drops the subscription (node restart, network fault).
	s.esdb.DropSubscriptions()
	s.traffic(1, users...)
	s.waitCaughtUp(p)
	s.assertMatchesLog(users...)
	if pr := p.Progress(); pr.Reconnects < 1 {
		t.Errorf("progress = %+v, want a reconnect after the drop", pr)
	}

	// MongoDB goes away while events arrive, then comes back.
	s.mongo.Pause()
	s.traffic(2, users...)
	if err := p.WaitUntil(ctxT(t), func(pr projection.Progress) bool { return pr.Reconnects >= 2 }); err != nil {
		t.Fatalf("the projector did not notice the outage: %v", err)
	}
	s.mongo.Resume()
	s.traffic(3, users...)
	s.waitCaughtUp(p)
	s.assertMatchesLog(users...)
}

// couponApplied is an event type this version of the domain does not know.
type couponApplied struct {
	Code string `json:"code"`
}

func (couponApplied) Type() string { return "CouponApplied" }

func TestProjectorMarksPoisonedCartStale(t *testing.T) {
	if testing.Short() {
		t.Skip("starts EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	s := newStack(t)
	s.traffic(0, users...)
	s.append("bob", couponApplied{Code: "X"})
	s.traffic(1, users...)
	p, _ := s.runProjector(0)
	s.waitCaughtUp(p)
	s.assertMatchesLog(users...)
	d, _, err := s.store.GetCart(ctxT(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Stale || !strings.Contains(d.StaleReason, "CouponApplied") {
		t.Errorf("bob = %+v, want stale because of CouponApplied", d)
	}
	if pr := p.Progress(); pr.EventsParked != 3 { // the coupon and bob's two events after it
		t.Errorf("progress = %+v, want 3 parked", pr)
	}
}
