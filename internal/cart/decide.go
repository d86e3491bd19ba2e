package cart

import "fmt"

// Decide applies the business rules: given the cart's state and a command it
// returns the events that record the change, or why the change is not
// allowed. It does no I/O, so the write model can call it again after a
// concurrency conflict, and tests can state every rule as given/when/then.
// A command that changes nothing returns no events and no error.
func Decide(c Cart, cmd Command) ([]Event, error) {
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	switch cmd := cmd.(type) {
	case AddItem:
		return decideAdd(c, cmd)
	case RemoveItem:
		if _, ok := c.Item(cmd.ProductID); !ok {
			return nil, ruleErrorf(ErrItemNotFound, "product %q is not in the cart", cmd.ProductID)
		}
		return []Event{ItemRemoved{ProductID: cmd.ProductID}}, nil
	case ChangeItemQuantity:
		it, ok := c.Item(cmd.ProductID)
		if !ok {
			return nil, ruleErrorf(ErrItemNotFound, "product %q is not in the cart", cmd.ProductID)
		}
		if it.Quantity == cmd.Quantity {
			return nil, nil
		}
		return []Event{ItemQuantityChanged{ProductID: cmd.ProductID, Quantity: cmd.Quantity}}, nil
	case ClearCart:
		if c.IsEmpty() {
			return nil, nil
		}
		return []Event{CartCleared{}}, nil
	case CheckoutCart:
		if c.IsEmpty() {
			return nil, ErrCartEmpty
		}
		return decideCheckout(c, cmd)
	default:
		return nil, fmt.Errorf("decide: unknown command %T", cmd)
	}
}

// decideAdd adds at the catalog's price. A price the app showed that is
// not the catalog's is refused before any other rule: the user has to see
// the new price first, and whatever else is wrong can be told then.
func decideAdd(c Cart, cmd AddItem) ([]Event, error) {
	if cmd.CatalogPrice == nil {
		return nil, &ProductNotFoundError{ProductIDs: []string{cmd.ProductID}}
	}
	price := *cmd.CatalogPrice
	if err := checkCatalogPrice(cmd.ProductID, price); err != nil {
		return nil, err
	}
	if cmd.ShownPrice != nil && *cmd.ShownPrice != price {
		return nil, &PriceChangedError{Changes: []PriceChange{{ProductID: cmd.ProductID, Was: *cmd.ShownPrice, Now: price}}}
	}
	if cur := c.Currency(); cur != "" && cur != price.CurrencyCode {
		return nil, ruleErrorf(ErrCurrencyMismatch, "the cart's prices are in %s, not %s", cur, price.CurrencyCode)
	}
	it, ok := c.Item(cmd.ProductID)
	if !ok && len(c.Items) >= MaxLines {
		return nil, ErrLineLimit
	}
	if q := it.Quantity + cmd.Quantity; q > MaxQuantity {
		return nil, ruleErrorf(ErrQuantityLimit, "product %q would have quantity %d; at most %d", cmd.ProductID, q, MaxQuantity)
	}
	return []Event{ItemAdded{ProductID: cmd.ProductID, Quantity: cmd.Quantity, UnitPrice: price}}, nil
}

// decideCheckout prices every line again. Lines the catalog no longer knows
// fail the checkout; lines whose price changed fail it too unless the user
// accepted the new prices, in which case each is recorded as ItemRepriced
// before the checkout, which then charges the new prices.
func decideCheckout(c Cart, cmd CheckoutCart) ([]Event, error) {
	var (
		missing []string
		changes []PriceChange
	)
	for _, it := range c.Items {
		now, ok := cmd.Prices[it.ProductID]
		if !ok {
			missing = append(missing, it.ProductID)
			continue
		}
		if err := checkCatalogPrice(it.ProductID, now); err != nil {
			return nil, err
		}
		if now != it.UnitPrice {
			changes = append(changes, PriceChange{ProductID: it.ProductID, Was: it.UnitPrice, Now: now})
		}
	}
	if len(missing) > 0 {
		return nil, &ProductNotFoundError{ProductIDs: missing}
	}
	if len(changes) > 0 && !cmd.AcceptPriceChanges {
		return nil, &PriceChangedError{Changes: changes}
	}
	events := make([]Event, 0, len(changes)+1)
	for _, ch := range changes {
		e := ItemRepriced{ProductID: ch.ProductID, OldUnitPrice: ch.Was, NewUnitPrice: ch.Now}
		events = append(events, e)
		c = c.Apply(e)
	}
	// A catalog that moved some products to another currency would leave a
	// cart that has no total; the user has to start again in one currency.
	cur := c.Currency()
	for _, it := range c.Items {
		if it.UnitPrice.CurrencyCode != cur {
			return nil, ruleErrorf(ErrCurrencyMismatch, "the current prices are in more than one currency (%s, %s)", cur, it.UnitPrice.CurrencyCode)
		}
	}
	return append(events, CartCheckedOut{
		CheckoutID: cmd.CheckoutID,
		Items:      c.Clone().Items,
		Total:      c.Total(),
	}), nil
}

// checkCatalogPrice refuses a catalog price that breaks the rules every
// price follows. The adapters validate their prices, so this is a
// programming or catalog error, not the caller's: it is no ValidationError
// (which the API reports as the caller's bad input).
func checkCatalogPrice(productID string, m Money) error {
	if v := validateMoney("catalog price", m); len(v) > 0 {
		return fmt.Errorf("decide: the catalog's price %s of product %q is invalid: %s", m, productID, v[0].Description)
	}
	return nil
}
