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
		return []Event{CartCheckedOut{
			CheckoutID: cmd.CheckoutID,
			Items:      c.Clone().Items,
			Total:      c.Total(),
		}}, nil
	default:
		return nil, fmt.Errorf("decide: unknown command %T", cmd)
	}
}

func decideAdd(c Cart, cmd AddItem) ([]Event, error) {
	if cur := c.Currency(); cur != "" && cur != cmd.UnitPrice.CurrencyCode {
		return nil, ruleErrorf(ErrCurrencyMismatch, "the cart's prices are in %s, not %s", cur, cmd.UnitPrice.CurrencyCode)
	}
	it, ok := c.Item(cmd.ProductID)
	if !ok && len(c.Items) >= MaxLines {
		return nil, ErrLineLimit
	}
	if q := it.Quantity + cmd.Quantity; q > MaxQuantity {
		return nil, ruleErrorf(ErrQuantityLimit, "product %q would have quantity %d; at most %d", cmd.ProductID, q, MaxQuantity)
	}
	return []Event{ItemAdded{ProductID: cmd.ProductID, Quantity: cmd.Quantity, UnitPrice: cmd.UnitPrice}}, nil
}
