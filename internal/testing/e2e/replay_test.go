package e2e_test

import (
	"encoding/json"
	"testing"

	"github.com/acme/cart/internal/cart"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// TestReplayAfterADeployThatReadsTheParkedEvent: an event type this build
// cannot read parks and flags the cart stale; a later build that reads it
// (played here by restarting query-svc with a decoder that upcasts it)
// replays it, the cart is no longer stale, and the cart projects normally
// again.
func TestReplayAfterADeployThatReadsTheParkedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	e := newEnv(t)
	v := e.add("zed", "sku-1", 1, eur(2, 0))
	e.appendRaw("zed", "ItemDoubled", `{"product_id":"sku-1"}`)
	if stale := e.waitStale("zed"); stale.GetVersion() != v {
		t.Fatalf("stale cart at version %d, want %d", stale.GetVersion(), v)
	}

	e.stopQuery()
	e.decode = func(eventType string, data []byte) (cart.Event, error) {
		if eventType != "ItemDoubled" {
			return cart.Unmarshal(eventType, data)
		}
		var d struct {
			ProductID string `json:"product_id"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, err
		}
		return cart.ItemQuantityChanged{ProductID: d.ProductID, Quantity: 2}, nil
	}
	e.restartQuery()

	rp, err := e.admin.ReplayParkedEvents(ctx(t), &cartv1.ReplayParkedEventsRequest{UserId: "zed"})
	if err != nil {
		t.Fatal(err)
	}
	if rp.GetReplayed() != 1 || len(rp.GetStillParked()) != 0 {
		t.Fatalf("replay = %v; want the one parked event applied", rp)
	}
	got := e.cartAt("zed", v+1)
	if got.GetStale() || quantities(got)["sku-1"] != 2 {
		t.Fatalf("after the replay: %v; want sku-1 x2 and not stale", got)
	}
	if left, err := e.admin.ListParkedEvents(ctx(t), &cartv1.ListParkedEventsRequest{UserId: "zed"}); err != nil || len(left.GetParkedEvents()) != 0 {
		t.Fatalf("parked after the replay = %v, %v; want none", left, err)
	}
	// Later events project again. (They are appended raw: command-svc was
	// not "deployed" with the new decoder, and rightly refuses to decide on
	// a history it cannot read.)
	e.appendRaw("zed", cart.TypeItemAdded, `{"product_id":"sku-2","quantity":1,"unit_price":{"currency_code":"EUR","units":1}}`)
	if q := quantities(e.cartAt("zed", v+2)); q["sku-1"] != 2 || q["sku-2"] != 1 {
		t.Fatalf("later events: %v", q)
	}
}
