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
	doc := projection.CartDoc{UserID: userID, Version: -1} // the last read, for "not ready"
	for {
		// Register before reading, so a flush in between is not missed.
		// The read runs beside the wait: the projector's announcement may
		// come (with the document) before a slow read answers, and then
		// the read is not waited for.
		wake, cancel := s.Waiter.Wait(userID, minVersion)
		rctx, stopRead := context.WithCancel(ctx)
		reads := make(chan readResult, 1)
		go func() {
			d, err := s.readCart(rctx, userID)
			reads <- readResult{d, err}
		}()
		woken := wake.C // nil once woken without a document
		answer, final, err := func() (CartView, bool, error) {
			defer stopRead()
			for reading := true; ; {
				select {
				case r := <-reads:
					reading = false
					if r.err != nil || r.doc.Version >= minVersion {
						return viewOf(r.doc), true, r.err
					}
					doc = r.doc
					if doc.Stale {
						return CartView{}, true, notReady(doc, minVersion)
					}
					if woken == nil {
						return CartView{}, false, nil // woken meanwhile: read again
					}
				case <-woken:
					if d, ok := wake.Doc(); ok {
						return viewOf(d), true, nil
					}
					woken = nil
					if !reading {
						return CartView{}, false, nil
					}
				case <-timer.C:
					return CartView{}, true, notReady(doc, minVersion)
				case <-ctx.Done():
					return CartView{}, true, fmt.Errorf("get cart %q: %w", userID, ctx.Err())
				}
			}
		}()
		cancel()
		if final {
			return answer, err
		}
	}
}

// readResult is a read of the read model run beside a wait.
type readResult struct {
	doc projection.CartDoc
	err error
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
