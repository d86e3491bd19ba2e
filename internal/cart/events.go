package cart

// Event is a fact that happened to a cart. Events are stored as JSON under the
// name Type returns; names and JSON shapes are a contract with every reader
// of the log (see docs/events.md) and never change in place.
type Event interface {
	// Type is the stored event type name.
	Type() string
}

// Stored event type names.
const (
	TypeItemAdded           = "ItemAdded"
	TypeItemRemoved         = "ItemRemoved"
	TypeItemQuantityChanged = "ItemQuantityChanged"
	TypeCartCleared         = "CartCleared"
	TypeCartCheckedOut      = "CartCheckedOut"
	TypeItemRepriced        = "ItemRepriced"
)

// ItemAdded records that quantity more of a product went into the cart at
// a unit price, which becomes the line's price.
type ItemAdded struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
	UnitPrice Money  `json:"unit_price"`
}

// ItemRemoved records that a product's line left the cart.
type ItemRemoved struct {
	ProductID string `json:"product_id"`
}

// ItemQuantityChanged records a line's new quantity.
type ItemQuantityChanged struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

// CartCleared records that every line left the cart.
type CartCleared struct{}

// CartCheckedOut records what was bought; the cart is empty afterwards.
type CartCheckedOut struct {
	CheckoutID string `json:"checkout_id"`
	Items      []Item `json:"items"`
	Total      Money  `json:"total"`
}

// ItemRepriced records that a line's unit price became the catalog's
// current price, which the user accepted at checkout; the CartCheckedOut
// that follows charges the new price. It keeps the repricing visible in the
// cart's history instead of hiding it in the checkout's totals.
type ItemRepriced struct {
	ProductID    string `json:"product_id"`
	OldUnitPrice Money  `json:"old_unit_price"`
	NewUnitPrice Money  `json:"new_unit_price"`
}

// Type implements Event.
func (ItemAdded) Type() string { return TypeItemAdded }

// Type implements Event.
func (ItemRemoved) Type() string { return TypeItemRemoved }

// Type implements Event.
func (ItemQuantityChanged) Type() string { return TypeItemQuantityChanged }

// Type implements Event.
func (CartCleared) Type() string { return TypeCartCleared }

// Type implements Event.
func (CartCheckedOut) Type() string { return TypeCartCheckedOut }

// Type implements Event.
func (ItemRepriced) Type() string { return TypeItemRepriced }

// Apply evolves the cart by one event. It never fails: events are facts, so
// it applies them as recorded even where today's rules would not allow them
// (an event for a missing line changes nothing). It does not mutate the
// slices c held before, so a cached state can be shared.
func (c Cart) Apply(e Event) Cart {
	switch e := e.(type) {
	case ItemAdded:
		items := append([]Item(nil), c.Items...)
		if i := c.find(e.ProductID); i >= 0 {
			items[i].Quantity += e.Quantity
			items[i].UnitPrice = e.UnitPrice
		} else {
			items = append(items, Item{ProductID: e.ProductID, Quantity: e.Quantity, UnitPrice: e.UnitPrice})
		}
		return Cart{Items: items}
	case ItemRemoved:
		i := c.find(e.ProductID)
		if i < 0 {
			return c
		}
		if len(c.Items) == 1 {
			return Cart{}
		}
		items := make([]Item, 0, len(c.Items)-1)
		items = append(items, c.Items[:i]...)
		items = append(items, c.Items[i+1:]...)
		return Cart{Items: items}
	case ItemQuantityChanged:
		i := c.find(e.ProductID)
		if i < 0 {
			return c
		}
		items := append([]Item(nil), c.Items...)
		items[i].Quantity = e.Quantity
		return Cart{Items: items}
	case ItemRepriced:
		i := c.find(e.ProductID)
		if i < 0 {
			return c
		}
		items := append([]Item(nil), c.Items...)
		items[i].UnitPrice = e.NewUnitPrice
		return Cart{Items: items}
	case CartCleared, CartCheckedOut:
		return Cart{}
	default:
		return c
	}
}

// Fold applies events in order to a starting cart.
func Fold(c Cart, events ...Event) Cart {
	for _, e := range events {
		c = c.Apply(e)
	}
	return c
}
