package cart

import (
	"errors"
	"fmt"
	"strings"
)

// RuleError is a business rule that forbids a command in the cart's current
// state. Reason is a stable, machine-readable code that the API passes on to
// callers (gRPC ErrorInfo) so that clients can branch on it.
type RuleError struct {
	Reason  string
	Message string
}

// Error is the human-readable message; callers branch on Reason instead.
func (e *RuleError) Error() string { return e.Message }

// Is makes errors.Is match any RuleError with the same reason, so that the
// sentinels below match errors that carry a more specific message.
func (e *RuleError) Is(target error) bool {
	var t *RuleError
	return errors.As(target, &t) && t.Reason == e.Reason
}

// The business rules a command can break; callers match them with errors.Is.
var (
	ErrItemNotFound     = &RuleError{Reason: "CART_ITEM_NOT_FOUND", Message: "the product is not in the cart"}
	ErrCartEmpty        = &RuleError{Reason: "CART_EMPTY", Message: "the cart is empty"}
	ErrLineLimit        = &RuleError{Reason: "CART_LINE_LIMIT", Message: fmt.Sprintf("a cart holds at most %d distinct products", MaxLines)}
	ErrQuantityLimit    = &RuleError{Reason: "CART_QUANTITY_LIMIT", Message: fmt.Sprintf("a line's quantity must stay between %d and %d", MinQuantity, MaxQuantity)}
	ErrCurrencyMismatch = &RuleError{Reason: "CART_CURRENCY_MISMATCH", Message: "a cart holds prices in one currency only"}
	// ErrPriceChanged: a price the user was shown is no longer the
	// catalog's. The error Decide returns is a *PriceChangedError, which
	// lists the changes and matches this sentinel.
	ErrPriceChanged = &RuleError{Reason: "PRICE_CHANGED", Message: "a price changed"}
	// ErrProductNotFound: the catalog does not sell the product (any more).
	// The error Decide returns is a *ProductNotFoundError naming the
	// products, and matches this sentinel.
	ErrProductNotFound = &RuleError{Reason: "PRODUCT_NOT_FOUND", Message: "the product is not in the catalog"}
)

// PriceChange is one price that changed: what the user was shown (or what
// the line was added at) and the catalog's current price.
type PriceChange struct {
	ProductID string
	Was       Money
	Now       Money
}

// PriceChangedError is a command refused because prices changed: AddItem
// with a shown price that is not the catalog's, or CheckoutCart with lines
// whose price changed since they were added. It lists every change so that
// the app can show the new prices and ask again (for a checkout, with
// AcceptPriceChanges). It reads as a *RuleError with reason PRICE_CHANGED
// (errors.As, errors.Is(err, ErrPriceChanged)), so code that maps rule
// errors needs nothing more; code that wants the prices uses errors.As.
type PriceChangedError struct {
	Changes []PriceChange
}

// Error lists the changes, for logs and the status message.
func (e *PriceChangedError) Error() string {
	parts := make([]string, len(e.Changes))
	for i, c := range e.Changes {
		parts[i] = fmt.Sprintf("%s: %s, now %s", c.ProductID, c.Was, c.Now)
	}
	return "prices changed: " + strings.Join(parts, "; ")
}

// Unwrap is the rule error this is, so that errors.As finds a *RuleError
// with reason PRICE_CHANGED and this message.
func (e *PriceChangedError) Unwrap() error {
	return &RuleError{Reason: ErrPriceChanged.Reason, Message: e.Error()}
}

// ProductNotFoundError is a command refused because the catalog does not
// know one or more of its products: the product of an AddItem, or lines of
// a cart being checked out. Like PriceChangedError it reads as a *RuleError
// (reason PRODUCT_NOT_FOUND) and matches ErrProductNotFound.
type ProductNotFoundError struct {
	ProductIDs []string
}

// Error names the products, for logs and the status message.
func (e *ProductNotFoundError) Error() string {
	if len(e.ProductIDs) == 1 {
		return fmt.Sprintf("product %q is not in the catalog", e.ProductIDs[0])
	}
	return fmt.Sprintf("products %q are not in the catalog", e.ProductIDs)
}

// Unwrap is the rule error this is; see PriceChangedError.Unwrap.
func (e *ProductNotFoundError) Unwrap() error {
	return &RuleError{Reason: ErrProductNotFound.Reason, Message: e.Error()}
}

func ruleErrorf(base *RuleError, format string, args ...any) *RuleError {
	return &RuleError{Reason: base.Reason, Message: fmt.Sprintf(format, args...)}
}

// Errors the adapters translate their stores' failures into, so that the
// command and query layers and the API map them without knowing the stores.
var (
	// ErrConcurrencyConflict: the stream moved on since it was read.
	ErrConcurrencyConflict = errors.New("concurrency conflict")
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: a store could not be reached; retrying later may work.
	ErrUnavailable = errors.New("store unavailable")
)

// FieldViolation names one bad field of a request, as the API spells it.
type FieldViolation struct {
	Field       string
	Description string
}

// ValidationError lists every problem of a request's shape at once, so that
// a caller can fix them all in one go (gRPC BadRequest).
type ValidationError struct {
	Violations []FieldViolation
}

// Error lists every violation, for logs and the status message.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// asValidationError returns nil for no violations so callers can return it directly.
func asValidationError(v []FieldViolation) error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Violations: v}
}
