package query

import (
	"context"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/projection"
)

// DefaultMaxWait caps how long GetCart waits for the read model to reach a
// caller's min_version, whatever the caller's deadline, so that a request
// for a version that never comes cannot hold a server goroutine for long.
const DefaultMaxWait = 10 * time.Second

// CartReader reads the current carts from the read model.
type CartReader interface {
	// GetCart returns the user's document; ok is false when there is none.
	GetCart(ctx context.Context, userID string) (doc projection.CartDoc, ok bool, err error)
}

// VersionWaiter tells when a cart's document reaches a version, so that
// read-your-writes needs no polling (projection.Notifier implements it).
type VersionWaiter interface {
	// Wait returns a Wake closed once userID's document is at minVersion
	// or later (carrying the document when the projector announced it),
	// and a function that ends the wait.
	Wait(userID string, minVersion int64) (*projection.Wake, func())
}

// Service answers queries. Set the fields its queries need; it is safe for
// concurrent use once set.
type Service struct {
	// Carts is the read model, for GetCart.
	Carts CartReader
	// Waiter wakes GetCart calls waiting for a version. Nil: GetCart never
	// waits and fails with ErrNotReady when the version is not there yet.
	Waiter VersionWaiter
	// MaxWait caps GetCart's wait for min_version; 0 means DefaultMaxWait.
	MaxWait time.Duration
	// Events is the event log, for the audit trail and time travel.
	Events EventReader
}

// Line is a cart line as queries return it.
type Line struct {
	ProductID string
	Quantity  int
	UnitPrice cart.Money
	LineTotal cart.Money
}

// CartView is a cart as the API shows it, with the totals computed by the
// domain's own rules. Every query that returns a cart returns one.
type CartView struct {
	UserID    string
	Lines     []Line
	Total     cart.Money
	ItemCount int
	// Version is the stream revision of the last event reflected; -1: none.
	Version int64
	// UpdateTime is when that event was recorded; zero when Version is -1.
	UpdateTime time.Time
	// Stale says the read model could not apply one of the cart's events.
	Stale bool
}

// NewCartView builds the view of a cart state.
func NewCartView(userID string, c cart.Cart, version int64, updated time.Time, stale bool) CartView {
	v := CartView{
		UserID:    userID,
		Total:     c.Total(),
		ItemCount: c.ItemCount(),
		Version:   version,
		// Millisecond precision, as the read model stores times (BSON), so
		// that a cart reads the same from the read model and from a replay.
		UpdateTime: updated.Truncate(time.Millisecond),
		Stale:      stale,
	}
	if version < 0 {
		v.UpdateTime = time.Time{}
	}
	for _, it := range c.Items {
		v.Lines = append(v.Lines, Line{ProductID: it.ProductID, Quantity: it.Quantity, UnitPrice: it.UnitPrice, LineTotal: it.LineTotal()})
	}
	return v
}
