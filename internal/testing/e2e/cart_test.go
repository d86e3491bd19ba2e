package e2e_test

import (
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readmodel"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

func eur(units int64, nanos int32) *cartv1.Money {
	return &cartv1.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
}

func (e *env) add(user, product string, qty int32, price *cartv1.Money) int64 {
	e.t.Helper()
	if price != nil {
		e.show(product, price)
	}
	resp, err := e.cmd.AddItem(ctx(e.t), &cartv1.AddItemRequest{UserId: user, ProductId: product, Quantity: qty, UnitPrice: price})
	if err != nil {
		e.t.Fatalf("AddItem(%s, %s): %v", user, product, err)
	}
	return resp.GetVersion()
}

// cartAt reads the cart once the read model has reached version.
func (e *env) cartAt(user string, version int64) *cartv1.Cart {
	e.t.Helper()
	resp, err := e.query.GetCart(ctx(e.t), &cartv1.GetCartRequest{UserId: user, MinVersion: proto.Int64(version)})
	if err != nil {
		e.t.Fatalf("GetCart(%s, min %d): %v", user, version, err)
	}
	if resp.GetCart().GetVersion() < version {
		e.t.Fatalf("GetCart(%s, min %d) answered version %d", user, version, resp.GetCart().GetVersion())
	}
	return resp.GetCart()
}

// replayed is the cart as a fresh replay of the log computes it.
func (e *env) replayed(user string, version int64) *cartv1.Cart {
	e.t.Helper()
	resp, err := e.query.GetCartAsOf(ctx(e.t), &cartv1.GetCartAsOfRequest{UserId: user, Point: &cartv1.GetCartAsOfRequest_AsOfVersion{AsOfVersion: version}})
	if err != nil {
		e.t.Fatalf("GetCartAsOf(%s, %d): %v", user, version, err)
	}
	return resp.GetCart()
}

func quantities(c *cartv1.Cart) map[string]int32 {
	q := map[string]int32{}
	for _, it := range c.GetItems() {
		q[it.GetProductId()] = it.GetQuantity()
	}
	return q
}

func TestCommandsBecomeVisibleInGetCart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := ctx(t)

	empty, err := e.query.GetCart(c, &cartv1.GetCartRequest{UserId: "nobody"})
	if err != nil || empty.GetCart().GetVersion() != -1 || len(empty.GetCart().GetItems()) != 0 {
		t.Fatalf("cart of a new user = %v, %v; want empty at version -1", empty, err)
	}

	v := e.add("alice", "sku-1", 2, eur(9, 990_000_000))
	if v != 0 {
		t.Fatalf("first version = %d, want 0", v)
	}
	v = e.add("alice", "sku-2", 1, eur(5, 0))
	got := e.cartAt("alice", v)
	if len(got.Items) != 2 || got.GetItemCount() != 3 || !proto.Equal(got.GetTotal(), eur(24, 980_000_000)) {
		t.Fatalf("cart = %v", got)
	}
	if !proto.Equal(got.Items[0].GetLineTotal(), eur(19, 980_000_000)) {
		t.Fatalf("line total = %v", got.Items[0].GetLineTotal())
	}

	chg, err := e.cmd.ChangeItemQuantity(c, &cartv1.ChangeItemQuantityRequest{UserId: "alice", ProductId: "sku-1", Quantity: 5})
	if err != nil {
		t.Fatal(err)
	}
	if q := quantities(e.cartAt("alice", chg.GetVersion())); q["sku-1"] != 5 {
		t.Fatalf("quantities after change = %v", q)
	}
	rm, err := e.cmd.RemoveItem(c, &cartv1.RemoveItemRequest{UserId: "alice", ProductId: "sku-2"})
	if err != nil {
		t.Fatal(err)
	}
	if q := quantities(e.cartAt("alice", rm.GetVersion())); len(q) != 1 || q["sku-1"] != 5 {
		t.Fatalf("quantities after remove = %v", q)
	}

	co, err := e.cmd.CheckoutCart(c, &cartv1.CheckoutCartRequest{UserId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if co.GetCheckoutId() == "" || len(co.GetItems()) != 1 || !proto.Equal(co.GetTotal(), eur(49, 950_000_000)) {
		t.Fatalf("checkout = %v", co)
	}
	if after := e.cartAt("alice", co.GetVersion()); len(after.GetItems()) != 0 || after.GetItemCount() != 0 {
		t.Fatalf("cart after checkout = %v", after)
	}

	_, err = e.cmd.CheckoutCart(c, &cartv1.CheckoutCartRequest{UserId: "alice"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("checkout of an empty cart: %v", err)
	}
	clr, err := e.cmd.ClearCart(c, &cartv1.ClearCartRequest{UserId: "alice"})
	if err != nil || clr.GetVersion() != co.GetVersion() {
		t.Fatalf("clearing an empty cart = %v, %v; want success at version %d", clr, err, co.GetVersion())
	}
	_, err = e.cmd.AddItem(c, &cartv1.AddItemRequest{UserId: "alice", ProductId: "x", Quantity: 1, UnitPrice: e.show("x", eur(1, 0)), ExpectedVersion: proto.Int64(0)})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("stale expected_version: %v", err)
	}
}

func TestConcurrentWritersOnOneCart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const writers, each = 6, 5
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions       = map[int64]bool{}
		max      int64 = -1
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				resp, err := e.cmd.AddItem(ctx(t), &cartv1.AddItemRequest{UserId: "hot", ProductId: "sku-1", Quantity: 1, UnitPrice: e.show("sku-1", eur(1, 0))})
				if err != nil {
					t.Errorf("AddItem: %v", err)
					return
				}
				mu.Lock()
				if versions[resp.GetVersion()] {
					t.Errorf("version %d returned twice", resp.GetVersion())
				}
				versions[resp.GetVersion()] = true
				if resp.GetVersion() > max {
					max = resp.GetVersion()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if max != writers*each-1 {
		t.Fatalf("last version = %d, want %d", max, writers*each-1)
	}
	if q := quantities(e.cartAt("hot", max)); q["sku-1"] != writers*each {
		t.Fatalf("quantity = %d, want %d: an update was lost", q["sku-1"], writers*each)
	}
}

func TestProjectorRestartMidStreamAndRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	users := []string{"u1", "u2", "u3"}
	last := map[string]int64{}
	var mu sync.Mutex
	write := func(round int) {
		var wg sync.WaitGroup
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 4; i++ {
					v := e.add(u, fmt.Sprintf("p%d", (round+i)%3), 1, eur(int64(round+1), 0))
					mu.Lock()
					last[u] = max(last[u], v)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	write(0)
	// Restart query-svc while writes are going on.
	done := make(chan struct{})
	go func() { defer close(done); write(1) }()
	e.stopQuery()
	e.restartQuery()
	<-done
	write(2)
	for _, u := range users {
		live, fresh := e.cartAt(u, last[u]), e.replayed(u, last[u])
		if !proto.Equal(live, fresh) {
			t.Fatalf("after restart, %s: read model\n%v\n!= replay\n%v", u, live, fresh)
		}
	}
}

// TestRedeliveryDoesNotDoubleCount forgets the projector's checkpoint, so
// that a restarted query-svc receives every event again from the start.
func TestRedeliveryDoesNotDoubleCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var last int64
	for i := 0; i < 5; i++ {
		last = e.add("dup", "sku-1", 1, eur(2, 0))
	}
	before := e.cartAt("dup", last)

	e.stopQuery()
	rm, err := readmodel.ConnectWith(ctx(t), e.mongoURI, readmodel.FerretDBCompat())
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close(ctx(t))
	if err := rm.Store(e.mongoDB, readmodel.Collections{}).DeleteCheckpoint(ctx(t), projection.DefaultName); err != nil {
		t.Fatal(err)
	}
	e.restartQuery()

	// A new event after the replayed ones: once the read model has it, the
	// projector has been through every earlier event again.
	last = e.add("dup", "sku-2", 1, eur(2, 0))
	after := e.cartAt("dup", last)
	if q := quantities(after); q["sku-1"] != 5 || q["sku-2"] != 1 || after.GetItemCount() != 6 {
		t.Fatalf("after redelivery: %v (before: %v)", q, quantities(before))
	}
}
