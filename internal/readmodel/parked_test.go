package readmodel

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

func parkedEvent(user string, rev int64, commit uint64) eventlog.Event {
	return eventlog.Event{
		StreamID: "cart-" + user, UserID: user, Revision: rev,
		Position: eventlog.Position{Commit: commit, Prepare: commit - 1},
		EventID:  "id-" + user, Type: "CouponApplied", Data: []byte(`{"code":"X"}`),
		Metadata: []byte(`{"command_id":"c"}`), Created: time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC),
	}
}

func TestParkingLot(t *testing.T) {
	t.Parallel()
	_, c, _ := newStore(t, Collections{})
	lot := c.ParkingLot("lot")
	ctx := ctxT(t)
	// Out of log order on purpose; commit 1000 sorts after 999 only when padded.
	evs := []eventlog.Event{parkedEvent("bob", 4, 1000), parkedEvent("alice", 2, 999), parkedEvent("bob", 3, 20)}
	for _, ev := range evs {
		if err := lot.Park(ctx, ev, errors.New("decode CouponApplied event: unknown event type")); err != nil {
			t.Fatal(err)
		}
	}
	// Parking again keeps the first record.
	if err := lot.Park(ctx, evs[0], errors.New("another cause")); err != nil {
		t.Fatalf("parking again: %v", err)
	}

	all, err := lot.ListParked(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var order []uint64
	for _, p := range all {
		order = append(order, p.Event.Position.Commit)
	}
	if !reflect.DeepEqual(order, []uint64{20, 999, 1000}) {
		t.Fatalf("parked in order %v, want log order [20 999 1000]", order)
	}
	got := all[2]
	if !reflect.DeepEqual(got.Event, evs[0]) || got.Error != "decode CouponApplied event: unknown event type" ||
		got.ReplayAttempts != 0 || got.ParkedAt.IsZero() || got.Key != projection.ParkingKey(evs[0].Position) {
		t.Fatalf("parked event = %+v\nwant event %+v with the first cause", got, evs[0])
	}

	bobs, err := lot.ListParked(ctx, "bob", all[0].Key, 10)
	if err != nil || len(bobs) != 1 || bobs[0].Event.Revision != 4 {
		t.Fatalf("bob's after the first key = %+v, %v; want revision 4 only", bobs, err)
	}
	if page, err := lot.ListParked(ctx, "", "", 2); err != nil || len(page) != 2 {
		t.Fatalf("limit 2 gave %d, %v", len(page), err)
	}

	if err := lot.ReplayFailed(ctx, got.Key, "still unknown"); err != nil {
		t.Fatal(err)
	}
	if err := lot.ReplayFailed(ctx, got.Key, "still unknown, again"); err != nil {
		t.Fatal(err)
	}
	if err := lot.ReplayFailed(ctx, "nope", "x"); err == nil {
		t.Fatal("ReplayFailed of a missing key succeeded")
	}
	bobs, _ = lot.ListParked(ctx, "bob", "", 0)
	if bobs[1].ReplayAttempts != 2 || bobs[1].LastReplayError != "still unknown, again" {
		t.Fatalf("after two failed replays: %+v", bobs[1])
	}

	if err := lot.DeleteParked(ctx, bobs[0].Key, bobs[1].Key); err != nil {
		t.Fatal(err)
	}
	if err := lot.DeleteParked(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := lot.ListParked(ctx, "", "", 0)
	if err != nil || len(left) != 1 || left[0].Event.UserID != "alice" {
		t.Fatalf("left after deleting bob's = %+v, %v", left, err)
	}
}
