package projection

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// upcaster knows an old event type, "ItemPut", that cart.Unmarshal does not:
// what a deploy with an upcaster brings.
func upcaster(typ string, data []byte) (cart.Event, error) {
	if typ != "ItemPut" {
		return cart.Unmarshal(typ, data)
	}
	var old struct {
		SKU string `json:"sku"`
		N   int    `json:"n"`
	}
	if err := json.Unmarshal(data, &old); err != nil {
		return nil, &cart.DecodeError{Type: typ, Err: err}
	}
	return cart.ItemAdded{ProductID: old.SKU, Quantity: old.N, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 1}}, nil
}

func TestProjectorDecodesWithConfiguredDecoder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		decode     Decoder
		wantQty    int
		wantStale  bool
		wantParked int
	}{
		{name: "default decoder parks the unknown type", decode: nil, wantQty: 1, wantStale: true, wantParked: 2},
		{name: "upcaster applies it", decode: upcaster, wantQty: 4, wantStale: false, wantParked: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBuilder(t)
			evs := []eventlog.Event{
				b.event("u1", add("p1", 1)),
				b.raw("u1", "ItemPut", []byte(`{"sku":"p1","n":2}`)),
				b.event("u1", add("p1", 1)),
			}
			log := newFakeLog()
			log.addEvents(evs...)
			store := newFakeStore()
			parker := &fakeParker{}
			p := start(t, Config{Source: log, Store: store, Parker: parker, Decode: tt.decode})
			waitFor(t, p, "catch-up", storedThrough(evs[2].Position))
			d, _ := store.doc("u1")
			if got, _ := d.Cart.Item("p1"); got.Quantity != tt.wantQty || d.Stale != tt.wantStale {
				t.Errorf("u1 = %+v, want quantity %d stale %v", d, tt.wantQty, tt.wantStale)
			}
			if got := len(parker.events()); got != tt.wantParked {
				t.Errorf("%d events parked, want %d", got, tt.wantParked)
			}
		})
	}
}

func TestDecodeEventChecksMetadata(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	good := b.event("u1", add("p1", 1))
	badMeta := good
	badMeta.Metadata = []byte("{")
	tests := []struct {
		name    string
		ev      eventlog.Event
		dec     Decoder
		wantErr bool
	}{
		{name: "good event, default decoder", ev: good},
		{name: "bad metadata", ev: badMeta, wantErr: true},
		{name: "unknown type", ev: b.raw("u1", "ItemPut", []byte(`{"sku":"x","n":1}`)), wantErr: true},
		{name: "unknown type with upcaster", ev: b.raw("u1", "ItemPut", []byte(`{"sku":"x","n":1}`)), dec: upcaster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := DecodeEvent(tt.dec, tt.ev)
			var de *cart.DecodeError
			if tt.wantErr != (err != nil) || (err != nil && !errors.As(err, &de)) {
				t.Fatalf("DecodeEvent = %v, %v; want a DecodeError: %v", e, err, tt.wantErr)
			}
			if err == nil && e == nil {
				t.Fatal("no event and no error")
			}
		})
	}
}

func TestProjectorReportsLastEvent(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	log := newFakeLog()
	log.checkpointEvery = 2
	evs := []eventlog.Event{b.event("u1", add("p1", 1)), b.event("u2", add("p1", 1))}
	log.addEvents(evs...)
	var tail eventlog.Position
	for range 3 { // records of other streams after the last cart event
		r := b.hidden()
		tail = r.ev.Position
		log.add(r)
	}
	p := start(t, Config{Source: log, Store: newFakeStore()})
	waitFor(t, p, "catch-up", storedThrough(tail))
	pr := p.Progress()
	if pr.LastEvent == nil || *pr.LastEvent != evs[1].Position {
		t.Fatalf("LastEvent = %v, want %v (the last cart event, not the checkpoint %v)", pr.LastEvent, evs[1].Position, pr.Checkpoint)
	}
}

// TestExclusiveWritesBeneathHeldEvents replays a parked event inside
// Exclusive, as the parking lot's replay does, while the projector holds a
// newer event of the same cart in its batch: the newer event lands on top
// of what the replay wrote.
func TestExclusiveWritesBeneathHeldEvents(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	first := b.event("u1", add("p1", 1))
	poison := b.raw("u1", "ItemPut", []byte(`{"sku":"p1","n":2}`))
	log := newFakeLog()
	log.addEvents(first, poison)
	store := newFakeStore()
	parker := &fakeParker{}
	p := start(t, Config{Source: log, Store: store, Parker: parker})
	waitFor(t, p, "poison parked", storedThrough(poison.Position))

	later := b.event("u1", add("p1", 4))
	err := p.Exclusive(context.Background(), func(ctx context.Context) error {
		log.addEvents(later) // received while the replay runs; flushed after it
		docs, err := store.LoadCarts(ctx, []string{"u1"})
		if err != nil {
			return err
		}
		d := docs["u1"]
		e, err := DecodeEvent(upcaster, poison)
		if err != nil {
			return err
		}
		base := d.Version
		d.Cart, d.Version, d.Stale, d.StaleReason = d.Cart.Apply(e), poison.Revision, false, ""
		_, err = store.WriteCarts(ctx, []CartWrite{{Doc: d, ExpectedVersion: base}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, "later event", storedThrough(later.Position))
	d, _ := store.doc("u1")
	if it, _ := d.Cart.Item("p1"); d.Version != later.Revision || d.Stale || it.Quantity != 7 {
		t.Fatalf("u1 = %+v, want version %d, not stale, quantity 7", d, later.Revision)
	}
}
