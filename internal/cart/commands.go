package cart

import "fmt"

// Command is a request to change a cart. The owner is not part of the
// command: a cart is addressed by its stream, one per user.
type Command interface {
	// Name is the command's name in logs and idempotency fingerprints.
	Name() string
	// Validate reports every problem of the command's shape at once; it
	// needs no state, so the API can reject bad input before any I/O.
	Validate() error
}

// AddItem asks to put Quantity more of a product into the cart, at the
// catalog's price: apps are not trusted with prices.
//
// The JSON form of a command is the payload of its idempotency fingerprint
// (package command), so only what the caller asked for is in it, under the
// names it had before prices came from the catalog; this keeps the
// fingerprints of commands recorded earlier the same.
type AddItem struct {
	ProductID string
	Quantity  int
	// ShownPrice is the unit price the app showed the user, when it sent
	// one (the API's unit_price): if it is not the catalog's price the
	// command fails with PRICE_CHANGED, so that nobody buys at a price they
	// were not shown. Nil means the catalog's price is taken as is.
	ShownPrice *Money `json:"UnitPrice,omitempty"`
	// CatalogPrice is the product's current price, which the line gets. The
	// command handler sets it from the catalog before deciding, replacing
	// whatever the caller put there; nil means the catalog does not know the
	// product (PRODUCT_NOT_FOUND).
	CatalogPrice *Money `json:"-"`
}

// RemoveItem asks to remove a product's line.
type RemoveItem struct {
	ProductID string
}

// ChangeItemQuantity asks to set a line's quantity.
type ChangeItemQuantity struct {
	ProductID string
	Quantity  int
}

// ClearCart asks to remove every line.
type ClearCart struct{}

// CheckoutCart asks to buy what is in the cart at the catalog's current
// prices. CheckoutID is chosen by the caller of Decide (derived from the
// command ID) so that a retried checkout records the same ID. See AddItem
// for what its JSON form is for.
type CheckoutCart struct {
	CheckoutID string
	// AcceptPriceChanges says the user agreed to pay the current prices of
	// lines whose price changed since they were added; without it such a
	// checkout fails with PRICE_CHANGED, listing the changes to show.
	AcceptPriceChanges bool `json:",omitempty"`
	// Prices are the catalog's current prices of the cart's products, set
	// by the command handler before deciding (never by the caller). A line
	// whose product is missing fails the checkout with PRODUCT_NOT_FOUND.
	Prices map[string]Money `json:"-"`
}

// Name implements Command.
func (AddItem) Name() string { return "AddItem" }

// Name implements Command.
func (RemoveItem) Name() string { return "RemoveItem" }

// Name implements Command.
func (ChangeItemQuantity) Name() string { return "ChangeItemQuantity" }

// Name implements Command.
func (ClearCart) Name() string { return "ClearCart" }

// Name implements Command.
func (CheckoutCart) Name() string { return "CheckoutCart" }

// Validate implements Command. It checks what the caller gave, not the
// catalog's price: the API validates before the catalog is asked.
func (c AddItem) Validate() error {
	v := validateID("product_id", c.ProductID)
	v = append(v, validateQuantity(c.Quantity)...)
	if c.ShownPrice != nil {
		v = append(v, validateMoney("unit_price", *c.ShownPrice)...)
	}
	return asValidationError(v)
}

// Validate implements Command.
func (c RemoveItem) Validate() error { return asValidationError(validateID("product_id", c.ProductID)) }

// Validate implements Command.
func (c ChangeItemQuantity) Validate() error {
	v := validateID("product_id", c.ProductID)
	v = append(v, validateQuantity(c.Quantity)...)
	return asValidationError(v)
}

// Validate implements Command.
func (ClearCart) Validate() error { return nil }

// Validate implements Command.
func (c CheckoutCart) Validate() error {
	if c.CheckoutID == "" {
		return asValidationError([]FieldViolation{{"checkout_id", "must not be empty"}})
	}
	return nil
}

// ValidateUserID checks a cart owner's ID; it is separate from the commands
// because queries take user IDs too.
func ValidateUserID(id string) error { return asValidationError(validateID("user_id", id)) }

// ValidateID checks an identifier against the rule shared by users and
// products: 1-128 of letters, digits and -_.:@| (safe in stream names and
// logs; "|" because identity providers put it in subjects, as Auth0's
// "auth0|123"). It returns the violations for the named field, if any.
func ValidateID(field, id string) []FieldViolation { return validateID(field, id) }

func validateID(field, id string) []FieldViolation {
	if id == "" {
		return []FieldViolation{{field, "must not be empty"}}
	}
	if len(id) > MaxIDLength {
		return []FieldViolation{{field, fmt.Sprintf("must be at most %d characters", MaxIDLength)}}
	}
	for i := 0; i < len(id); i++ {
		if !isIDByte(id[i]) {
			return []FieldViolation{{field, "may hold only letters, digits and -_.:@|"}}
		}
	}
	return nil
}

func isIDByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	case b == '-' || b == '_' || b == '.' || b == ':' || b == '@' || b == '|':
		return true
	}
	return false
}

func validateQuantity(q int) []FieldViolation {
	if q < MinQuantity || q > MaxQuantity {
		return []FieldViolation{{"quantity", fmt.Sprintf("must be between %d and %d", MinQuantity, MaxQuantity)}}
	}
	return nil
}
