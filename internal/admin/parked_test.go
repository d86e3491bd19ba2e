package admin

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readside"
)

// deployable is a decoder that learns the old "ItemPut" event type once
// deployed: an upcaster shipped after the events were parked.
type deployable struct{ deployed atomic.Bool }

func (d *deployable) decode(typ string, data []byte) (cart.Event, error) {
	if typ != "ItemPut" || !d.deployed.Load() {
		return cart.Unmarshal(typ, data)
	}
	var old struct {
		SKU string `json:"sku"`
		N   int    `json:"n"`
	}
	if err := json.Unmarshal(data, &old); err != nil {
		return nil, &cart.DecodeError{Type: typ, Err: err}
	}
	return cart.ItemAdded{ProductID: old.SKU, Quantity: old.N, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 2, Nanos: 500_000_000}}, nil
}

func TestReplayParkedEventsOnceTheCodeKnowsThem(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded FerretDB")
	}
	t.Parallel()
	dec := &deployable{}
	e := newTestEnv(t, envOptions{decode: dec.decode})
	e.log.append(t, "bob", add("p1", 1))
	poison := e.log.appendRaw(t, "bob", "ItemPut", []byte(`{"sku":"p1","n":2}`))
	after := e.log.append(t, "bob", add("p2", 1))
	e.log.append(t, "alice", add("p1", 1))
	e.waitProjected()

	if d := e.doc("bob"); !d.Stale || d.Version != 0 || !strings.Contains(d.StaleReason, "ItemPut") {
		t.Fatalf("bob = %+v; want stale at version 0 because of ItemPut", d)
	}
	page, err := e.svc.ListParked(ctxT(t), "", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Events[0].Event.EventID != poison.EventID || page.Events[1].Event.EventID != after.EventID ||
		!strings.Contains(page.Events[0].Error, "unknown event type") || !strings.Contains(page.Events[1].Error, "gap") {
		t.Fatalf("parked = %+v; want the ItemPut then the event after it", page.Events)
	}

	// Before the deploy the replay fails again, and the order is kept.
	res, err := e.svc.ReplayParked(ctxT(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 0 || len(res.StillParked) != 2 || res.StillParked[0].ReplayAttempts != 1 ||
		!strings.Contains(res.StillParked[0].LastReplayError, "unknown event type") || res.StillParked[1].ReplayAttempts != 0 {
		t.Fatalf("replay before the deploy = %+v", res)
	}
	if d := e.doc("bob"); !d.Stale || d.Version != 0 {
		t.Fatalf("bob after a failed replay = %+v", d)
	}

	// After the deploy it applies both, clears the flag and empties the lot.
	dec.deployed.Store(true)
	res, err = e.svc.ReplayParked(ctxT(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 2 || len(res.StillParked) != 0 {
		t.Fatalf("replay after the deploy = %+v", res)
	}
	got, want := e.doc("bob"), e.fold("bob", dec.decode)
	if got.StaleReason != "" || !reflect.DeepEqual(got, want) {
		t.Fatalf("bob after the replay = %+v\nwant %+v", got, want)
	}
	if page, err := e.svc.ListParked(ctxT(t), "", 0, ""); err != nil || len(page.Events) != 0 {
		t.Fatalf("parking lot after the replay = %+v, %v", page, err)
	}
	// The projector goes on with bob's cart as usual.
	e.log.append(t, "bob", add("p3", 1))
	e.waitProjected()
	if got, want := e.doc("bob"), e.fold("bob", dec.decode); !reflect.DeepEqual(got, want) {
		t.Fatalf("bob after a new event = %+v\nwant %+v", got, want)
	}
	if res, err := e.svc.ReplayParked(ctxT(t), ""); err != nil || res.Replayed != 0 || len(res.StillParked) != 0 {
		t.Fatalf("replaying an empty lot = %+v, %v", res, err)
	}
}

func TestListParkedPages(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded FerretDB")
	}
	t.Parallel()
	e := newTestEnv(t, envOptions{})
	for _, u := range []string{"ann", "bob", "ann"} {
		if err := e.lot.Park(ctxT(t), e.log.appendRaw(t, u, "CouponApplied", []byte(`{}`)), errors.New("unknown")); err != nil {
			t.Fatal(err)
		}
	}
	p1, err := e.svc.ListParked(ctxT(t), "", 2, "")
	if err != nil || len(p1.Events) != 2 || p1.NextPageToken == "" {
		t.Fatalf("first page = %+v, %v", p1, err)
	}
	p2, err := e.svc.ListParked(ctxT(t), "", 2, p1.NextPageToken)
	if err != nil || len(p2.Events) != 1 || p2.NextPageToken != "" || p2.Events[0].Event.UserID != "ann" || p2.Events[0].Event.Revision != 1 {
		t.Fatalf("second page = %+v, %v", p2, err)
	}
	anns, err := e.svc.ListParked(ctxT(t), "ann", 0, "")
	if err != nil || len(anns.Events) != 2 || anns.NextPageToken != "" {
		t.Fatalf("ann's = %+v, %v", anns, err)
	}

	tests := []struct {
		name     string
		user     string
		pageSize int
		token    string
		want     func(error) bool
	}{
		{"negative page size", "", -1, "", func(err error) bool { var ve *cart.ValidationError; return errors.As(err, &ve) }},
		{"token of another filter", "ann", 2, p1.NextPageToken, func(err error) bool { return errors.Is(err, ErrBadPageToken) }},
		{"garbage token", "", 2, "%%%", func(err error) bool { return errors.Is(err, ErrBadPageToken) }},
		{"token without a key", "", 2, encodeParkedToken(parkedToken{}), func(err error) bool { return errors.Is(err, ErrBadPageToken) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := e.svc.ListParked(ctxT(t), tt.user, tt.pageSize, tt.token); !tt.want(err) {
				t.Fatalf("ListParked = %v", err)
			}
		})
	}
}

func TestOperationsRunOneAtATime(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded FerretDB")
	}
	t.Parallel()
	e := newTestEnv(t, envOptions{})
	e.log.append(t, "u1", add("p1", 1))
	e.waitProjected()

	running, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		first := true
		_, err := e.svc.Verify(context.Background(), func(Progress) {
			if first {
				first = false
				close(running)
				<-release
			}
		})
		done <- err
	}()
	<-running
	if _, err := e.svc.Rebuild(ctxT(t), nil); !errors.Is(err, ErrBusy) {
		t.Errorf("Rebuild during a verification = %v, want ErrBusy", err)
	}
	if _, err := e.svc.ReplayParked(ctxT(t), ""); !errors.Is(err, ErrBusy) {
		t.Errorf("ReplayParked during a verification = %v, want ErrBusy", err)
	}
	if _, err := e.svc.ListParked(ctxT(t), "", 0, ""); err != nil {
		t.Errorf("ListParked during a verification = %v; it only reads", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := e.svc.ReplayParked(ctxT(t), ""); err != nil {
		t.Fatalf("ReplayParked after the verification: %v", err)
	}

	// After Close, operations are refused as unavailable.
	e.svc.Close()
	if _, err := e.svc.Verify(ctxT(t), nil); !errors.Is(err, cart.ErrUnavailable) {
		t.Fatalf("Verify after Close = %v, want ErrUnavailable", err)
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	t.Parallel()
	live, err := readside.New(readside.Config{Catalog: failingCatalog{}, Open: func(string) readside.CartStore { return nil },
		Projection: projection.Config{Source: newFakeLog()}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no live", Config{Parking: nopLot{}, Events: newFakeLog()}},
		{"no parking lot", Config{Live: live, Events: newFakeLog()}},
		{"no event log", Config{Live: live, Parking: nopLot{}}},
		{"negative interval", Config{Live: live, Parking: nopLot{}, Events: newFakeLog(), ProgressInterval: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

// nopLot is a parking lot for configuration tests only.
type nopLot struct{ ParkingLot }
