package cart

// Limits of a cart; they keep documents, events and totals small and bounded.
const (
	MinQuantity = 1
	MaxQuantity = 99
	MaxLines    = 50
	MaxIDLength = 128
)

// Item is one line of a cart.
type Item struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
	UnitPrice Money  `json:"unit_price"`
}

// LineTotal is what the line costs.
func (i Item) LineTotal() Money { return i.UnitPrice.Times(i.Quantity) }

// Cart is the state of one user's cart that the rules need: its lines in the
// order their products were first added. The zero value is an empty cart.
type Cart struct {
	Items []Item `json:"items"`
}

// Currency is the currency of the cart's prices; empty for an empty cart,
// since an emptied cart may start again in another currency.
func (c Cart) Currency() string {
	if len(c.Items) == 0 {
		return ""
	}
	return c.Items[0].UnitPrice.CurrencyCode
}

// Total is the sum of the line totals, in the cart's currency.
func (c Cart) Total() Money {
	var n int64
	for _, it := range c.Items {
		n += it.LineTotal().nanos()
	}
	return moneyFromNanos(c.Currency(), n)
}

// ItemCount is the number of units in the cart, over all lines.
func (c Cart) ItemCount() int {
	n := 0
	for _, it := range c.Items {
		n += it.Quantity
	}
	return n
}

// IsEmpty tells whether the cart has no lines.
func (c Cart) IsEmpty() bool { return len(c.Items) == 0 }

// find returns the index of the product's line, or -1.
func (c Cart) find(productID string) int {
	for i, it := range c.Items {
		if it.ProductID == productID {
			return i
		}
	}
	return -1
}

// Item returns the product's line and whether it is in the cart.
func (c Cart) Item(productID string) (Item, bool) {
	if i := c.find(productID); i >= 0 {
		return c.Items[i], true
	}
	return Item{}, false
}

// Clone returns a cart that shares no memory with c, so that a cached state
// can be evolved without changing what others hold.
func (c Cart) Clone() Cart {
	return Cart{Items: append([]Item(nil), c.Items...)}
}
