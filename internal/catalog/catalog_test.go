package catalog_test

import (
	"context"
	"strings"
	"testing"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/catalog"
	"github.com/acme/cart/internal/catalog/catalogtest"
	"github.com/acme/cart/internal/command"
)

func TestStaticContract(t *testing.T) {
	t.Parallel()
	catalogtest.Run(t, func(t *testing.T, prices map[string]cart.Money) command.Catalog {
		s, err := catalog.NewStatic(prices)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func eur(units int64, nanos int32) cart.Money {
	return cart.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
}

func TestIndexReportsEveryProblemByProduct(t *testing.T) {
	t.Parallel()
	_, err := catalog.Index([]catalog.Product{
		{ProductID: "sku-1", UnitPrice: eur(9, 990_000_000)},
		{ProductID: "sku-1", UnitPrice: eur(1, 0)},
		{ProductID: "bad-cur", UnitPrice: cart.Money{CurrencyCode: "ZZZ", Units: 1}},
		{ProductID: "negative", UnitPrice: eur(-1, 0)},
		{ProductID: "nanos", UnitPrice: eur(1, 1_000_000_000)},
		{ProductID: "", UnitPrice: eur(1, 0)},
		{ProductID: "no-price"},
	})
	if err == nil {
		t.Fatal("invalid catalog accepted")
	}
	for _, want := range []string{
		`product "sku-1": listed more than once`,
		`product "bad-cur": unit_price.currency_code`,
		`product "negative": unit_price: must not be negative`,
		`product "nanos": unit_price.nanos`,
		`product #6: product_id: must not be empty`,
		`product "no-price": unit_price.currency_code`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestStaticChangesPrices(t *testing.T) {
	t.Parallel()
	var s catalog.Static // the zero value is an empty catalog
	ctx := context.Background()
	if err := s.Set("sku-1", eur(9, 990_000_000)); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("sku-2", cart.Money{CurrencyCode: "ZZZ"}); err == nil {
		t.Fatal("Set accepted a made-up currency")
	}
	if got, _ := s.Prices(ctx, []string{"sku-1"}); got["sku-1"] != eur(9, 990_000_000) {
		t.Fatalf("after Set: %v", got)
	}
	if err := s.Set("sku-1", eur(10, 490_000_000)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Prices(ctx, []string{"sku-1"}); got["sku-1"] != eur(10, 490_000_000) {
		t.Fatalf("after a price change: %v", got)
	}
	s.Remove("sku-1")
	if got, _ := s.Prices(ctx, []string{"sku-1"}); len(got) != 0 {
		t.Fatalf("after Remove: %v", got)
	}
	if _, err := catalog.NewStatic(map[string]cart.Money{"x": {CurrencyCode: "EUR", Units: -1}}); err == nil {
		t.Fatal("NewStatic accepted a negative price")
	}
}
