package command

import (
	"context"
	"errors"
	"fmt"

	"github.com/acme/cart/internal/cart"
)

// Catalog is what command handling needs of the product catalog: the
// current unit prices of products, in one call for a whole cart so that a
// checkout costs one round trip. Prices come from here and never from the
// caller, since apps are not trusted with them.
//
// Prices returns the price of every product in productIDs that the catalog
// sells; a product it does not know is simply absent from the map (no
// error), because what an unknown product means is a business rule
// (PRODUCT_NOT_FOUND, decided in package cart). The map is the caller's.
// Implementations translate an unreachable catalog into cart.ErrUnavailable;
// any other error is unexpected. Package catalog and its subpackages hold
// the implementations.
type Catalog interface {
	Prices(ctx context.Context, productIDs []string) (map[string]cart.Money, error)
}

// ErrNoCatalog is what AddItem and CheckoutCart fail with on a Handler
// built without Options.Catalog: rather than fall back to a price the caller
// sent, the handler refuses the commands that need prices.
var ErrNoCatalog = errors.New("no catalog configured (command.Options.Catalog): prices are never taken from the caller")

// priced returns cmd with the catalog's current prices filled in, for the
// commands that need them: AddItem gets its product's price (nil when the
// catalog does not know it), CheckoutCart the prices of every line of c.
// Whatever prices the caller put into cmd are replaced. Other commands pass
// through without asking the catalog.
func (h *Handler) priced(ctx context.Context, c cart.Cart, cmd cart.Command) (cart.Command, error) {
	switch cmd := cmd.(type) {
	case cart.AddItem:
		prices, err := h.prices(ctx, []string{cmd.ProductID})
		if err != nil {
			return nil, err
		}
		cmd.CatalogPrice = nil
		if p, ok := prices[cmd.ProductID]; ok {
			cmd.CatalogPrice = &p
		}
		return cmd, nil
	case cart.CheckoutCart:
		cmd.Prices = nil
		if c.IsEmpty() {
			return cmd, nil // Decide says CART_EMPTY; no need to ask
		}
		ids := make([]string, len(c.Items))
		for i, it := range c.Items {
			ids[i] = it.ProductID
		}
		prices, err := h.prices(ctx, ids)
		if err != nil {
			return nil, err
		}
		cmd.Prices = prices
		return cmd, nil
	default:
		return cmd, nil
	}
}

func (h *Handler) prices(ctx context.Context, ids []string) (map[string]cart.Money, error) {
	if h.opts.Catalog == nil {
		return nil, ErrNoCatalog
	}
	prices, err := h.opts.Catalog.Prices(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("look up prices: %w", err)
	}
	return prices, nil
}
