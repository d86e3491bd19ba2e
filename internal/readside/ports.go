package readside

import (
	"context"
	"iter"

	"github.com/acme/cart/internal/projection"
)

// CartStore is one carts collection (with the shared checkpoints): what the
// projector writes, what queries read, and what a verification compares.
type CartStore interface {
	projection.Store
	// GetCart returns the user's document; ok is false when there is none.
	GetCart(ctx context.Context, userID string) (doc projection.CartDoc, ok bool, err error)
	// ScanCarts yields every document in user ID order.
	ScanCarts(ctx context.Context) iter.Seq2[projection.CartDoc, error]
	// CountCarts returns how many documents the collection holds.
	CountCarts(ctx context.Context) (int64, error)
}

// Catalog records which carts collection is in use and drops the others.
type Catalog interface {
	// Active returns the name of the collection in use.
	Active(ctx context.Context) (string, error)
	// SetActive records carts as the collection in use.
	SetActive(ctx context.Context, carts string) error
	// Drop removes a collection and its projector's checkpoint.
	Drop(ctx context.Context, carts string) error
}
