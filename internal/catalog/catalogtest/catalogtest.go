// Package catalogtest is the contract every command.Catalog implementation
// passes, so that the command handler can rely on the same behaviour from
// the static, file and gRPC catalogs: known prices exactly as listed, an
// unknown product absent rather than an error, one batch for many products.
package catalogtest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
)

// Factory returns a catalog that sells exactly the given products at the
// given prices; it registers its own cleanup with t.
type Factory func(t *testing.T, prices map[string]cart.Money) command.Catalog

// Prices is the price list the contract runs on: cents, whole units, a
// price with every nanos digit, a free product and another currency.
var Prices = map[string]cart.Money{
	"sku-1":    {CurrencyCode: "EUR", Units: 9, Nanos: 990_000_000},
	"sku-2":    {CurrencyCode: "EUR", Units: 25},
	"sku-3":    {CurrencyCode: "EUR", Units: 3},
	"precise":  {CurrencyCode: "EUR", Units: 1_000_000, Nanos: 999_999_999},
	"free":     {CurrencyCode: "EUR"},
	"in-usd":   {CurrencyCode: "USD", Units: 12, Nanos: 500_000_000},
	"a.b:c@d_": {CurrencyCode: "JPY", Units: 1500},
}

// Run checks the contract of the catalogs newCatalog makes.
func Run(t *testing.T, newCatalog Factory) {
	t.Helper()
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return c
	}
	t.Run("known price", func(t *testing.T) {
		c := newCatalog(t, Prices)
		for id, want := range Prices {
			got, err := c.Prices(ctx(t), []string{id})
			if err != nil {
				t.Fatalf("Prices(%s): %v", id, err)
			}
			if len(got) != 1 || got[id] != want {
				t.Errorf("Prices(%s) = %v, want %v", id, got, want)
			}
		}
	})
	t.Run("unknown product is absent, not an error", func(t *testing.T) {
		c := newCatalog(t, Prices)
		got, err := c.Prices(ctx(t), []string{"no-such-sku"})
		if err != nil || len(got) != 0 {
			t.Fatalf("Prices(unknown) = %v, %v; want an empty map and no error", got, err)
		}
	})
	t.Run("batch", func(t *testing.T) {
		c := newCatalog(t, Prices)
		got, err := c.Prices(ctx(t), []string{"sku-1", "no-such-sku", "sku-2", "in-usd", "sku-1"})
		want := map[string]cart.Money{"sku-1": Prices["sku-1"], "sku-2": Prices["sku-2"], "in-usd": Prices["in-usd"]}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Prices(batch) = %v, %v; want %v", got, err, want)
		}
	})
	t.Run("no products", func(t *testing.T) {
		c := newCatalog(t, Prices)
		got, err := c.Prices(ctx(t), nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("Prices(nil) = %v, %v; want an empty map", got, err)
		}
	})
	t.Run("empty catalog", func(t *testing.T) {
		c := newCatalog(t, map[string]cart.Money{})
		got, err := c.Prices(ctx(t), []string{"sku-1"})
		if err != nil || len(got) != 0 {
			t.Fatalf("Prices on an empty catalog = %v, %v", got, err)
		}
	})
	t.Run("the answer is the caller's", func(t *testing.T) {
		c := newCatalog(t, Prices)
		got, err := c.Prices(ctx(t), []string{"sku-1"})
		if err != nil {
			t.Fatal(err)
		}
		got["sku-1"] = cart.Money{CurrencyCode: "EUR", Units: 1}
		again, err := c.Prices(ctx(t), []string{"sku-1"})
		if err != nil || again["sku-1"] != Prices["sku-1"] {
			t.Fatalf("after the caller changed its answer: %v, %v", again, err)
		}
	})
	t.Run("canceled context", func(t *testing.T) {
		c := newCatalog(t, Prices)
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.Prices(cctx, []string{"sku-1"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Prices on a canceled context = %v, want context.Canceled", err)
		}
	})
}
