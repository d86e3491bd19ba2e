// Package catalog is where command-svc's prices come from: the adapters of
// the command.Catalog port, and what they share. Apps are not trusted with
// prices, so the write side asks a catalog for every AddItem and checkout.
//
//   - Static (here): an in-memory price list, for tests and fixed setups.
//   - filecatalog: a JSON file, reloaded when it changes (--catalog FILE).
//   - grpccatalog: a client of cart.v1.PriceService (--price-service ADDR),
//     and a server of it over any catalog.
//   - catalogtest: the contract every implementation passes.
//
// Every adapter validates its prices with the domain's rules (cart.ValidateMoney)
// before handing them out, and follows the port's convention: a product the
// catalog does not sell is absent from the answer, not an error.
package catalog

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
)

// Product is one entry of a catalog: a product and its unit price. The JSON
// names are those of the catalog file and of the API.
type Product struct {
	ProductID string     `json:"product_id"`
	UnitPrice cart.Money `json:"unit_price"`
}

// Index checks a list of products and returns it as a price list. It
// reports every problem at once, each naming its product (or its position
// when the ID itself is bad): an invalid ID, a duplicate, a price that
// breaks the domain's rules (including a currency that is not ISO 4217), so
// that whoever edits a catalog fixes it in one go.
func Index(products []Product) (map[string]cart.Money, error) {
	prices := make(map[string]cart.Money, len(products))
	var problems []string
	for i, p := range products {
		name := fmt.Sprintf("product %q", p.ProductID)
		if v := cart.ValidateID("product_id", p.ProductID); len(v) > 0 {
			name = fmt.Sprintf("product #%d", i+1)
			problems = append(problems, fmt.Sprintf("%s: %s: %s", name, v[0].Field, v[0].Description))
		}
		for _, v := range cart.ValidateMoney("unit_price", p.UnitPrice) {
			problems = append(problems, fmt.Sprintf("%s: %s: %s", name, v.Field, v.Description))
		}
		if _, dup := prices[p.ProductID]; dup {
			problems = append(problems, fmt.Sprintf("%s: listed more than once", name))
		}
		prices[p.ProductID] = p.UnitPrice
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid catalog: %s", strings.Join(problems, "; "))
	}
	return prices, nil
}

// Lookup answers a Prices call from a price list: the prices of the
// products asked for that the list holds, in a map of the caller's own.
func Lookup(prices map[string]cart.Money, productIDs []string) map[string]cart.Money {
	out := make(map[string]cart.Money, len(productIDs))
	for _, id := range productIDs {
		if p, ok := prices[id]; ok {
			out[id] = p
		}
	}
	return out
}

// Static is an in-memory catalog: the test double of every test that
// handles AddItem or CheckoutCart, and a catalog for setups whose prices do
// not change. Set and Remove change prices while it is in use, which is how
// tests make a price change between adding and checking out. The zero value
// is an empty catalog; it is safe for concurrent use.
type Static struct {
	mu     sync.RWMutex
	prices map[string]cart.Money
}

var _ command.Catalog = (*Static)(nil)

// NewStatic returns a catalog of prices, validated like a catalog file.
func NewStatic(prices map[string]cart.Money) (*Static, error) {
	products := make([]Product, 0, len(prices))
	for id, p := range prices {
		products = append(products, Product{ProductID: id, UnitPrice: p})
	}
	if _, err := Index(products); err != nil {
		return nil, err
	}
	return &Static{prices: maps.Clone(prices)}, nil
}

// Prices implements command.Catalog.
func (s *Static) Prices(ctx context.Context, productIDs []string) (map[string]cart.Money, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Lookup(s.prices, productIDs), nil
}

// Set puts a product into the catalog or changes its price.
func (s *Static) Set(productID string, price cart.Money) error {
	if _, err := Index([]Product{{ProductID: productID, UnitPrice: price}}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prices == nil {
		s.prices = make(map[string]cart.Money)
	}
	s.prices[productID] = price
	return nil
}

// Remove takes a product out of the catalog, as when it is no longer sold.
func (s *Static) Remove(productID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.prices, productID)
}
