package command_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/catalog"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/testing/commandtest"
)

// testCatalog prices every product at EUR 3 (what addItem shows), except
// the ones it lists, so that the tests written before prices came from the
// catalog keep their products and prices.
type testCatalog map[string]cart.Money

func (c testCatalog) Prices(ctx context.Context, ids []string) (map[string]cart.Money, error) {
	out := make(map[string]cart.Money, len(ids))
	for _, id := range ids {
		if p, ok := c[id]; ok {
			out[id] = p
		} else {
			out[id] = eur(3)
		}
	}
	return out, ctx.Err()
}

// priced gives opts the test catalog unless the test chose one.
func priced(opts command.Options) command.Options {
	if opts.Catalog == nil {
		opts.Catalog = testCatalog{}
	}
	return opts
}

// spyCatalog records the calls made to a catalog and can fail them.
type spyCatalog struct {
	command.Catalog
	mu    sync.Mutex
	calls [][]string
	err   error
}

func (s *spyCatalog) Prices(ctx context.Context, ids []string) (map[string]cart.Money, error) {
	s.mu.Lock()
	s.calls = append(s.calls, slices.Clone(ids))
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.Catalog.Prices(ctx, ids)
}

func (s *spyCatalog) Calls() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func money(cur string, units int64, nanos int32) cart.Money {
	return cart.Money{CurrencyCode: cur, Units: units, Nanos: nanos}
}

// pricedFixture is a handler on a catalog whose prices the test changes.
func pricedFixture(t *testing.T) (fixture, *catalog.Static, *spyCatalog) {
	t.Helper()
	cat, err := catalog.NewStatic(map[string]cart.Money{
		"sku-1": money("EUR", 9, 990_000_000),
		"sku-2": money("EUR", 25, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	spy := &spyCatalog{Catalog: cat}
	return newFixture(command.Options{Catalog: spy}), cat, spy
}

func events(t *testing.T, f fixture, user string) []cart.Event {
	t.Helper()
	var out []cart.Event
	if err := f.mem.LoadEvents(testCtx(t), user, 0, func(_ int64, e cart.Event, _ cart.Metadata) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHandlerWithoutCatalogRefusesPricedCommands(t *testing.T) {
	t.Parallel()
	mem := commandtest.NewMemoryStore()
	h := command.NewHandler(mem, command.Options{})
	for _, cmd := range []cart.Command{addItem("a", 1), cart.AddItem{ProductID: "a", Quantity: 1, CatalogPrice: ptr(eur(1))}} {
		if _, err := h.Handle(testCtx(t), command.Envelope{UserID: "u"}, cmd); !errors.Is(err, command.ErrNoCatalog) {
			t.Fatalf("AddItem without a catalog = %v, want ErrNoCatalog", err)
		}
	}
	// Commands that need no price still work, and a checkout is refused
	// once there is something to price.
	if _, err := h.Handle(testCtx(t), command.Envelope{UserID: "u"}, cart.ClearCart{}); err != nil {
		t.Fatalf("ClearCart without a catalog: %v", err)
	}
	if _, err := mem.AppendEvents(testCtx(t), "u", -1, cart.Metadata{CommandID: uuid.NewString()}, []cart.Event{cart.ItemAdded{ProductID: "a", Quantity: 1, UnitPrice: eur(1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(testCtx(t), command.Envelope{UserID: "u"}, cart.CheckoutCart{}); !errors.Is(err, command.ErrNoCatalog) {
		t.Fatalf("CheckoutCart without a catalog = %v, want ErrNoCatalog", err)
	}
	if n := mem.Len("u"); n != 1 {
		t.Fatalf("%d events written, want only the one the test appended", n)
	}
}

func TestAddItemIsPricedByTheCatalog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cmd       cart.AddItem
		wantPrice cart.Money
		wantErr   error
	}{
		{name: "no shown price takes the catalog's", cmd: cart.AddItem{ProductID: "sku-1", Quantity: 2}, wantPrice: money("EUR", 9, 990_000_000)},
		{name: "shown price equal to the catalog's", cmd: cart.AddItem{ProductID: "sku-1", Quantity: 2, ShownPrice: ptr(money("EUR", 9, 990_000_000))}, wantPrice: money("EUR", 9, 990_000_000)},
		{name: "shown price that changed", cmd: cart.AddItem{ProductID: "sku-1", Quantity: 2, ShownPrice: ptr(money("EUR", 8, 0))}, wantErr: cart.ErrPriceChanged},
		{name: "a price the caller slipped in is ignored", cmd: cart.AddItem{ProductID: "sku-1", Quantity: 2, CatalogPrice: ptr(money("EUR", 0, 1))}, wantPrice: money("EUR", 9, 990_000_000)},
		{name: "unknown product", cmd: cart.AddItem{ProductID: "sku-404", Quantity: 1, CatalogPrice: ptr(money("EUR", 1, 0))}, wantErr: cart.ErrProductNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _, spy := pricedFixture(t)
			_, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u"}, tt.cmd)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Handle = %v, want %v", err, tt.wantErr)
			}
			if calls := spy.Calls(); !reflect.DeepEqual(calls, [][]string{{tt.cmd.ProductID}}) {
				t.Errorf("catalog calls = %v, want one for %s", calls, tt.cmd.ProductID)
			}
			if tt.wantErr != nil {
				if n := f.mem.Len("u"); n != 0 {
					t.Fatalf("refused command wrote %d events", n)
				}
				return
			}
			if it, _ := f.cartOf(t, "u").Item(tt.cmd.ProductID); it.UnitPrice != tt.wantPrice {
				t.Fatalf("line price = %v, want %v", it.UnitPrice, tt.wantPrice)
			}
		})
	}
}

func TestPriceChangedErrorCarriesThePrices(t *testing.T) {
	t.Parallel()
	f, _, _ := pricedFixture(t)
	_, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u"}, cart.AddItem{ProductID: "sku-1", Quantity: 1, ShownPrice: ptr(money("EUR", 8, 0))})
	var pce *cart.PriceChangedError
	if !errors.As(err, &pce) {
		t.Fatalf("err = %v, want a PriceChangedError", err)
	}
	want := []cart.PriceChange{{ProductID: "sku-1", Was: money("EUR", 8, 0), Now: money("EUR", 9, 990_000_000)}}
	if !reflect.DeepEqual(pce.Changes, want) {
		t.Fatalf("changes = %+v, want %+v", pce.Changes, want)
	}
	var re *cart.RuleError
	if !errors.As(err, &re) || re.Reason != "PRICE_CHANGED" {
		t.Fatalf("as a rule error: %+v, want reason PRICE_CHANGED", re)
	}
}

func TestCatalogOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	f, _, spy := pricedFixture(t)
	spy.err = fmt.Errorf("fake catalog: down: %w", cart.ErrUnavailable)
	for _, cmd := range []cart.Command{cart.AddItem{ProductID: "sku-1", Quantity: 1}} {
		if _, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u"}, cmd); !errors.Is(err, cart.ErrUnavailable) {
			t.Fatalf("Handle = %v, want ErrUnavailable", err)
		}
	}
	if n := f.mem.Len("u"); n != 0 {
		t.Fatalf("%d events written while the catalog was down", n)
	}
}

func TestCheckoutRepricesEveryLine(t *testing.T) {
	t.Parallel()
	f, cat, spy := pricedFixture(t)
	env := command.Envelope{UserID: "u"}
	f.do(t, env, cart.AddItem{ProductID: "sku-1", Quantity: 2})
	f.do(t, env, cart.AddItem{ProductID: "sku-2", Quantity: 1})

	// Unchanged prices: one batch lookup, a plain checkout.
	if err := cat.Set("sku-1", money("EUR", 9, 990_000_000)); err != nil {
		t.Fatal(err)
	}
	before := len(spy.Calls())
	if _, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "other"}, cart.CheckoutCart{}); !errors.Is(err, cart.ErrCartEmpty) {
		t.Fatalf("empty checkout = %v", err)
	}
	if len(spy.Calls()) != before {
		t.Fatal("an empty cart's checkout asked the catalog")
	}

	// sku-1 goes up: the checkout is refused, listing the change.
	if err := cat.Set("sku-1", money("EUR", 10, 490_000_000)); err != nil {
		t.Fatal(err)
	}
	_, err := f.h.Handle(testCtx(t), env, cart.CheckoutCart{})
	var pce *cart.PriceChangedError
	if !errors.As(err, &pce) || !reflect.DeepEqual(pce.Changes, []cart.PriceChange{{ProductID: "sku-1", Was: money("EUR", 9, 990_000_000), Now: money("EUR", 10, 490_000_000)}}) {
		t.Fatalf("checkout after a price change = %v, want PRICE_CHANGED for sku-1", err)
	}
	if calls := spy.Calls(); !reflect.DeepEqual(calls[len(calls)-1], []string{"sku-1", "sku-2"}) {
		t.Fatalf("last catalog call = %v, want one batch of both lines", calls[len(calls)-1])
	}
	if n := f.mem.Len("u"); n != 2 {
		t.Fatalf("refused checkout wrote: %d events", n)
	}

	// The user accepts: the repricing is recorded, then the checkout at the new price.
	res := f.do(t, command.Envelope{UserID: "u", CommandID: uuid.NewString()}, cart.CheckoutCart{AcceptPriceChanges: true})
	wantItems := []cart.Item{{ProductID: "sku-1", Quantity: 2, UnitPrice: money("EUR", 10, 490_000_000)}, {ProductID: "sku-2", Quantity: 1, UnitPrice: money("EUR", 25, 0)}}
	if res.Version != 3 || res.Checkout == nil || !reflect.DeepEqual(res.Checkout.Items, wantItems) || res.Checkout.Total != money("EUR", 45, 980_000_000) {
		t.Fatalf("accepted checkout = %+v / %+v", res, res.Checkout)
	}
	evs := events(t, f, "u")
	if len(evs) != 4 || evs[2] != (cart.ItemRepriced{ProductID: "sku-1", OldUnitPrice: money("EUR", 9, 990_000_000), NewUnitPrice: money("EUR", 10, 490_000_000)}) {
		t.Fatalf("events = %#v, want ItemRepriced before CartCheckedOut", evs)
	}
}

func TestCheckoutOfAProductNoLongerSold(t *testing.T) {
	t.Parallel()
	f, cat, _ := pricedFixture(t)
	f.do(t, command.Envelope{UserID: "u"}, cart.AddItem{ProductID: "sku-2", Quantity: 1})
	cat.Remove("sku-2")
	_, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u"}, cart.CheckoutCart{AcceptPriceChanges: true})
	var pnf *cart.ProductNotFoundError
	if !errors.As(err, &pnf) || !reflect.DeepEqual(pnf.ProductIDs, []string{"sku-2"}) || !errors.Is(err, cart.ErrProductNotFound) {
		t.Fatalf("checkout = %v, want PRODUCT_NOT_FOUND naming sku-2", err)
	}
}

func TestResentAddItemIsNotPricedAgain(t *testing.T) {
	t.Parallel()
	f, cat, spy := pricedFixture(t)
	env := command.Envelope{UserID: "u", CommandID: uuid.NewString()}
	cmd := cart.AddItem{ProductID: "sku-1", Quantity: 1, ShownPrice: ptr(money("EUR", 9, 990_000_000))}
	first := f.do(t, env, cmd)
	// The price changes before the resend: the resend is still the same
	// command, answered from the window, without asking the catalog.
	if err := cat.Set("sku-1", money("EUR", 11, 0)); err != nil {
		t.Fatal(err)
	}
	calls := len(spy.Calls())
	again := f.do(t, env, cmd)
	if !again.Duplicate || again.Version != first.Version || len(spy.Calls()) != calls {
		t.Fatalf("resend = %+v after %d more catalog calls; want the first response, no lookup", again, len(spy.Calls())-calls)
	}
}

// TestFingerprintLeavesOutServerPrices pins the fingerprints of commands
// recorded before prices came from the catalog (the values were computed
// by the earlier code), and checks that what the server sets is left out.
func TestFingerprintLeavesOutServerPrices(t *testing.T) {
	t.Parallel()
	shown := eur(3)
	add := cart.AddItem{ProductID: "a", Quantity: 1, ShownPrice: &shown}
	if got := command.Fingerprint("u", add); got != "3831c6f138c6898146a62600b74e2711" {
		t.Errorf("AddItem fingerprint = %s; changed from the one recorded before catalog prices", got)
	}
	if got := command.Fingerprint("u", cart.CheckoutCart{CheckoutID: "x"}); got != "27daf9b06f349072df904ea86c083c63" {
		t.Errorf("CheckoutCart fingerprint = %s; changed from the one recorded before catalog prices", got)
	}
	withCatalog := add
	withCatalog.CatalogPrice = ptr(eur(4))
	if command.Fingerprint("u", withCatalog) != command.Fingerprint("u", add) {
		t.Error("the catalog's price changes the AddItem fingerprint")
	}
	if command.Fingerprint("u", cart.AddItem{ProductID: "a", Quantity: 1}) == command.Fingerprint("u", add) {
		t.Error("AddItem with and without a shown price have the same fingerprint")
	}
	co := cart.CheckoutCart{Prices: map[string]cart.Money{"a": eur(3)}}
	if command.Fingerprint("u", co) != command.Fingerprint("u", cart.CheckoutCart{}) {
		t.Error("the catalog's prices change the CheckoutCart fingerprint")
	}
	if command.Fingerprint("u", cart.CheckoutCart{AcceptPriceChanges: true}) == command.Fingerprint("u", cart.CheckoutCart{}) {
		t.Error("accept_price_changes is not part of the CheckoutCart fingerprint")
	}
}

func TestCheckoutIDReusedWithAcceptPriceChanges(t *testing.T) {
	t.Parallel()
	f, _, _ := pricedFixture(t)
	f.do(t, command.Envelope{UserID: "u"}, cart.AddItem{ProductID: "sku-1", Quantity: 1})
	id := uuid.NewString()
	f.do(t, command.Envelope{UserID: "u", CommandID: id}, cart.CheckoutCart{})
	// Accepting price changes asks for something else: not a resend.
	_, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: id}, cart.CheckoutCart{AcceptPriceChanges: true})
	if !errors.Is(err, command.ErrCommandIDReused) {
		t.Fatalf("same command ID with accept_price_changes = %v, want ErrCommandIDReused", err)
	}
}
