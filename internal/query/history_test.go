package query

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/eventstore"
)

// fakeLog is an in-memory event log of one or more users' streams.
type fakeLog struct {
	streams map[string][]eventlog.Event
	reads   int
}

func (f *fakeLog) ReadStream(_ context.Context, userID string, from int64, count int) ([]eventlog.Event, error) {
	f.reads++
	s := f.streams[userID]
	if from >= int64(len(s)) {
		return nil, nil
	}
	s = s[from:]
	if count > 0 && count < len(s) {
		s = s[:count]
	}
	return append([]eventlog.Event(nil), s...), nil
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func (f *fakeLog) append(t *testing.T, userID string, meta cart.Metadata, events ...cart.Event) {
	t.Helper()
	if f.streams == nil {
		f.streams = map[string][]eventlog.Event{}
	}
	for _, e := range events {
		data, err := cart.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		md, _ := cart.MarshalMetadata(meta)
		rev := int64(len(f.streams[userID]))
		f.streams[userID] = append(f.streams[userID], eventlog.Event{
			StreamID: eventstore.StreamName(userID), UserID: userID, Revision: rev,
			EventID: fmt.Sprintf("id-%s-%d", userID, rev), Type: e.Type(), Data: data, Metadata: md,
			Created: t0.Add(time.Duration(rev) * time.Minute),
		})
	}
}

// history50 is a 50-event history mixing every event type.
func history50() []cart.Event {
	var ev []cart.Event
	price := func(u int64) cart.Money { return cart.Money{CurrencyCode: "EUR", Units: u} }
	for i := 0; len(ev) < 50; i++ {
		p := fmt.Sprintf("sku-%d", i%4)
		switch i % 7 {
		case 0, 1, 2:
			ev = append(ev, cart.ItemAdded{ProductID: p, Quantity: 1 + i%3, UnitPrice: price(int64(i))})
		case 3:
			ev = append(ev, cart.ItemQuantityChanged{ProductID: p, Quantity: 5})
		case 4:
			ev = append(ev, cart.ItemRemoved{ProductID: p})
		case 5:
			ev = append(ev, cart.CartCleared{})
		case 6:
			ev = append(ev, cart.CartCheckedOut{CheckoutID: fmt.Sprint(i)})
		}
	}
	return ev
}

func TestGetCartAsOfEveryVersion(t *testing.T) {
	t.Parallel()
	log := &fakeLog{}
	events := history50()
	log.append(t, "u1", cart.Metadata{Principal: "alice"}, events...)
	h := &Service{Events: log}
	for v := int64(-1); v < int64(len(events)); v++ {
		got, err := h.GetCartAsOfVersion(context.Background(), "u1", v)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		want := NewCartView("u1", cart.Fold(cart.Cart{}, events[:v+1]...), v, time.Time{}, false)
		if v >= 0 {
			want.UpdateTime = t0.Add(time.Duration(v) * time.Minute)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("version %d:\n got %+v\nwant %+v", v, got, want)
		}
	}
}

func TestGetCartAsOfVersionOutOfRange(t *testing.T) {
	t.Parallel()
	log := &fakeLog{}
	log.append(t, "u1", cart.Metadata{}, cart.ItemAdded{ProductID: "a", Quantity: 1, UnitPrice: cart.Money{CurrencyCode: "EUR"}})
	h := &Service{Events: log}
	for _, tt := range []struct {
		user    string
		version int64
	}{{"u1", 1}, {"u1", 99}, {"nobody", 0}} {
		if _, err := h.GetCartAsOfVersion(context.Background(), tt.user, tt.version); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("%s@%d: err = %v, want ErrOutOfRange", tt.user, tt.version, err)
		}
	}
	var ve *cart.ValidationError
	if _, err := h.GetCartAsOfVersion(context.Background(), "u1", -2); !errors.As(err, &ve) {
		t.Errorf("version -2: err = %v, want validation error", err)
	}
	got, err := h.GetCartAsOfVersion(context.Background(), "nobody", -1)
	if err != nil || got.Version != -1 || len(got.Lines) != 0 {
		t.Errorf("empty cart before any event: %+v, %v", got, err)
	}
}

func TestGetCartAsOfTime(t *testing.T) {
	t.Parallel()
	log := &fakeLog{}
	events := history50()
	log.append(t, "u1", cart.Metadata{}, events...)
	h := &Service{Events: log}
	for _, tt := range []struct {
		name string
		at   time.Time
		want int64 // version
	}{
		{"before the first event", t0.Add(-time.Second), -1},
		{"at the first event", t0, 0},
		{"between events", t0.Add(10*time.Minute + 30*time.Second), 10},
		{"at an event", t0.Add(20 * time.Minute), 20},
		{"after the last", t0.Add(24 * time.Hour), 49},
	} {
		got, err := h.GetCartAsOfTime(context.Background(), "u1", tt.at)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		want := cart.Fold(cart.Cart{}, events[:tt.want+1]...)
		if got.Version != tt.want || !reflect.DeepEqual(got, NewCartView("u1", want, tt.want, got.UpdateTime, false)) {
			t.Errorf("%s: got version %d %+v, want version %d", tt.name, got.Version, got, tt.want)
		}
	}
}

func TestReplayReadsInBatches(t *testing.T) {
	t.Parallel()
	log := &fakeLog{}
	for i := 0; i < 1200; i++ {
		log.append(t, "u1", cart.Metadata{}, cart.ItemQuantityChanged{ProductID: "a", Quantity: 1 + i%99})
	}
	h := &Service{Events: log}
	got, err := h.GetCartAsOfVersion(context.Background(), "u1", 1199)
	if err != nil || got.Version != 1199 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if log.reads != 3 {
		t.Fatalf("reads = %d, want 3 batches of %d", log.reads, replayBatch)
	}
}

func TestReplayFailsOnPoisonEvent(t *testing.T) {
	t.Parallel()
	log := &fakeLog{}
	log.append(t, "u1", cart.Metadata{}, cart.ItemAdded{ProductID: "a", Quantity: 1, UnitPrice: cart.Money{CurrencyCode: "EUR"}})
	log.streams["u1"] = append(log.streams["u1"], eventlog.Event{UserID: "u1", Revision: 1, Type: "Bogus", Data: []byte("{}"), Created: t0.Add(time.Minute)})
	h := &Service{Events: log}
	if _, err := h.GetCartAsOfVersion(context.Background(), "u1", 1); !errors.Is(err, cart.ErrUnknownEventType) {
		t.Fatalf("err = %v, want the decode error", err)
	}
	// Up to the event before it the past is still exact.
	if got, err := h.GetCartAsOfVersion(context.Background(), "u1", 0); err != nil || got.ItemCount != 1 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestGetCartHistoryPages(t *testing.T) {
	t.Parallel()
	log := &fakeLog{}
	events := history50()
	meta := cart.Metadata{CommandID: "c1", CommandType: "AddItem", CorrelationID: "k", CausationID: "z", Principal: "alice", Reason: "gift", Time: t0}
	log.append(t, "u1", meta, events...)
	log.streams["u1"] = append(log.streams["u1"], eventlog.Event{UserID: "u1", Revision: 50, Type: "ItemGiftWrapped", Data: []byte(`{"x":1}`), Created: t0.Add(50 * time.Minute)})
	h := &Service{Events: log}
	var (
		all   []Entry
		token string
		pages int
	)
	for {
		page, err := h.GetCartHistory(context.Background(), "u1", 20, token)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, page.Entries...)
		if page.NextPageToken == "" {
			break
		}
		token = page.NextPageToken
	}
	if pages != 3 || len(all) != 51 {
		t.Fatalf("pages = %d, entries = %d, want 3 and 51", pages, len(all))
	}
	for i, e := range all[:50] {
		if e.Version != int64(i) || !reflect.DeepEqual(e.Event, events[i]) || e.Metadata != meta || e.Type != events[i].Type() || e.DecodeErr != nil {
			t.Fatalf("entry %d = %+v, want event %#v", i, e, events[i])
		}
	}
	if last := all[50]; last.Event != nil || !errors.Is(last.DecodeErr, cart.ErrUnknownEventType) || string(last.Data) != `{"x":1}` {
		t.Fatalf("unknown event entry = %+v", last)
	}
}

func TestGetCartHistoryTokens(t *testing.T) {
	t.Parallel()
	log := &fakeLog{}
	log.append(t, "u1", cart.Metadata{}, history50()[:5]...)
	log.append(t, "u2", cart.Metadata{}, history50()[:5]...)
	h := &Service{Events: log}
	ctx := context.Background()
	page, err := h.GetCartHistory(ctx, "u1", 2, "")
	if err != nil || len(page.Entries) != 2 || page.NextPageToken == "" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	if _, err := h.GetCartHistory(ctx, "u2", 2, page.NextPageToken); !errors.Is(err, ErrBadPageToken) {
		t.Errorf("token of another user: err = %v", err)
	}
	if _, err := h.GetCartHistory(ctx, "u1", 2, "not a token"); !errors.Is(err, ErrBadPageToken) {
		t.Errorf("garbage token: err = %v", err)
	}
	var ve *cart.ValidationError
	if _, err := h.GetCartHistory(ctx, "u1", -1, ""); !errors.As(err, &ve) {
		t.Errorf("negative page size: err = %v", err)
	}
	full, err := h.GetCartHistory(ctx, "u1", 5, "")
	if err != nil || len(full.Entries) != 5 || full.NextPageToken != "" {
		t.Errorf("exact page: %d entries, token %q, %v", len(full.Entries), full.NextPageToken, err)
	}
	def, err := h.GetCartHistory(ctx, "nobody", 0, "")
	if err != nil || len(def.Entries) != 0 || def.NextPageToken != "" {
		t.Errorf("unknown user: %+v, %v", def, err)
	}
}
