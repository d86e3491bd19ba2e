package command_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
)

// TestOutcome: how a command ended decides whose fault a metric says it
// was: the caller's (rejected), nobody's (canceled) or ours (error).
func TestOutcome(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("AddItem: %w", err) }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no error", nil, command.OutcomeOK},
		{"a business rule", wrap(&cart.RuleError{Reason: "CART_ITEM_NOT_FOUND", Message: "no such line"}), command.OutcomeRejected},
		{"a price that changed", wrap(&cart.PriceChangedError{Changes: []cart.PriceChange{{ProductID: "sku-1"}}}), command.OutcomeRejected},
		{"an unknown product", wrap(&cart.ProductNotFoundError{ProductIDs: []string{"sku-9"}}), command.OutcomeRejected},
		{"bad input", wrap(&cart.ValidationError{Violations: []cart.FieldViolation{{Field: "quantity", Description: "must be positive"}}}), command.OutcomeRejected},
		{"the caller's stale version", wrap(command.ErrVersionMismatch), command.OutcomeRejected},
		{"a reused command ID", wrap(command.ErrCommandIDReused), command.OutcomeRejected},
		{"conflicts on every attempt", wrap(cart.ErrConcurrencyConflict), command.OutcomeRejected},
		{"the caller went away", wrap(context.Canceled), command.OutcomeCanceled},
		{"a store outage", wrap(cart.ErrUnavailable), command.OutcomeError},
		{"a deadline", wrap(context.DeadlineExceeded), command.OutcomeError},
		{"anything else", errors.New("boom"), command.OutcomeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := command.Outcome(tt.err); got != tt.want {
				t.Errorf("Outcome(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
