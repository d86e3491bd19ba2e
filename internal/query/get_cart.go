package query

import (
	"context"
	"fmt"
	"time"

	"github.com/acme/cart/internal/projection"
)

// A wait for min_version ends this much before the caller's deadline (a
// tenth of the time left, within these bounds), so that the answer "not
// ready, retry" reaches the caller before its deadline does, even on a
// loaded machine.
const (
	minAnswerMargin = 50 * time.Millisecond
	maxAnswerMargin = 500 * time.Millisecond
)

// answerMargin is how much of the time left to keep for answering.
func answerMargin(left time.Duration) time.Duration {
	return min(max(left/10, minAnswerMargin), maxAnswerMargin)
}

// GetCart returns the user's current cart from the read model; a user with
// no document has the empty cart at version -1. With minVersion >= 0 it
// answers only once the cart reflects that version (read-your-writes after
// a command): it waits for the projector's notification, up to the caller's
// deadline capped by MaxWait, and then fails with ErrNotReady. A stale cart
// below minVersion fails at once, since the projector will not move it.
// The outcome of a wait is an event on ctx's span (see tracing.go).
func (s *Service) GetCart(ctx context.Context, userID string, minVersion int64) (CartView, error) {
	if minVersion < 0 {
		return s.getCart(ctx, userID, minVersion)
	}
	start := time.Now()
	view, err := s.getCart(ctx, userID, minVersion)
	noteMinVersion(ctx, minVersion, time.Since(start), view, err)
	return view, err
}

func (s *Service) getCart(ctx context.Context, userID string, minVersion int64) (CartView, error) {
	if minVersion < 0 || s.Waiter == nil {
		doc, err := s.readCart(ctx, userID)
		if err != nil || doc.Version >= minVersion {
			return viewOf(doc), err
		}
		return CartView{}, notReady(doc, minVersion)
	}
	budget := s.MaxWait
	if budget <= 0 {
		budget = DefaultMaxWait
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		budget = min(budget, left-answerMargin(left))
	}
	timer := time.NewTimer(max(budget, 0))
	defer timer.Stop()
	for {
		// Register before reading, so a flush in between is not missed;
		// one read per round: the version is often there already.
		wake, cancel := s.Waiter.Wait(userID, minVersion)
		doc, err := s.readCart(ctx, userID)
		if err != nil || doc.Version >= minVersion {
			cancel()
			return viewOf(doc), err
		}
		if doc.Stale {
			cancel()
			return CartView{}, notReady(doc, minVersion)
		}
		select {
		case <-wake.C:
			cancel()
			// The projector's announcement carries the document it just
			// stored: the answer needs no second read.
			if d, ok := wake.Doc(); ok {
				return viewOf(d), nil
			}
		case <-timer.C:
			cancel()
			return CartView{}, notReady(doc, minVersion)
		case <-ctx.Done():
			cancel()
			return CartView{}, fmt.Errorf("get cart %q: %w", userID, ctx.Err())
		}
	}
}

// readCart reads the user's document; a missing one is the empty cart.
func (s *Service) readCart(ctx context.Context, userID string) (projection.CartDoc, error) {
	doc, ok, err := s.Carts.GetCart(ctx, userID)
	if err != nil {
		return projection.CartDoc{}, fmt.Errorf("get cart %q: %w", userID, err)
	}
	if !ok {
		return projection.CartDoc{UserID: userID, Version: -1}, nil
	}
	return doc, nil
}

func viewOf(d projection.CartDoc) CartView {
	return NewCartView(d.UserID, d.Cart, d.Version, d.UpdatedAt, d.Stale)
}

func notReady(d projection.CartDoc, minVersion int64) error {
	if d.Stale {
		return fmt.Errorf("cart is stale at version %d, below min_version %d: %w", d.Version, minVersion, ErrNotReady)
	}
	return fmt.Errorf("cart is at version %d, below min_version %d: %w", d.Version, minVersion, ErrNotReady)
}
