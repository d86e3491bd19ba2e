package metrics_test

import (
	"testing"

	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/metrics"
)

// Commands is what command-svc gives the handler as its observer.
var _ command.Observer = (*metrics.Commands)(nil)

// TestCommandsCountWhatTheHandlerTells calls the observer hooks as the
// command handler does (see command.Handler: a Conflict before every
// retry, Conflict and RetriesExhausted when it gives up, CommandDone once
// per command) and checks every series of the three counters.
func TestCommandsCountWhatTheHandlerTells(t *testing.T) {
	type series = map[string]float64
	for _, tc := range []struct {
		name                      string
		do                        func(c *metrics.Commands)
		done, conflicts, exhausts series
	}{
		{
			name: "nothing handled, no series",
			do:   func(*metrics.Commands) {},
			done: series{}, conflicts: series{}, exhausts: series{},
		},
		{
			name: "outcomes by command",
			do: func(c *metrics.Commands) {
				c.CommandDone("AddItem", command.OutcomeOK)
				c.CommandDone("AddItem", command.OutcomeOK)
				c.CommandDone("AddItem", command.OutcomeRejected)
				c.CommandDone("RemoveItem", command.OutcomeCanceled)
				c.CommandDone("CheckoutCart", command.OutcomeError)
			},
			done: series{
				`cart_commands_total{command="AddItem",outcome="ok"}`:          2,
				`cart_commands_total{command="AddItem",outcome="rejected"}`:    1,
				`cart_commands_total{command="RemoveItem",outcome="canceled"}`: 1,
				`cart_commands_total{command="CheckoutCart",outcome="error"}`:  1,
			},
			conflicts: series{}, exhausts: series{},
		},
		{
			name: "a conflict retried, then ok",
			do: func(c *metrics.Commands) {
				c.Conflict("AddItem")
				c.CommandDone("AddItem", command.OutcomeOK)
			},
			done:      series{`cart_commands_total{command="AddItem",outcome="ok"}`: 1},
			conflicts: series{`cart_command_conflicts_total{command="AddItem"}`: 1},
			exhausts:  series{},
		},
		{
			name: "conflicts on every attempt: retries exhausted, rejected",
			do: func(c *metrics.Commands) {
				for range 3 {
					c.Conflict("CheckoutCart")
				}
				c.RetriesExhausted("CheckoutCart")
				c.CommandDone("CheckoutCart", command.OutcomeRejected)
			},
			done:      series{`cart_commands_total{command="CheckoutCart",outcome="rejected"}`: 1},
			conflicts: series{`cart_command_conflicts_total{command="CheckoutCart"}`: 3},
			exhausts:  series{`cart_command_retries_exhausted_total{command="CheckoutCart"}`: 1},
		},
		{
			name: "commands kept apart",
			do: func(c *metrics.Commands) {
				c.Conflict("AddItem")
				c.Conflict("RemoveItem")
				c.Conflict("RemoveItem")
				c.RetriesExhausted("RemoveItem")
				c.RetriesExhausted("ClearCart")
			},
			done: series{},
			conflicts: series{
				`cart_command_conflicts_total{command="AddItem"}`:    1,
				`cart_command_conflicts_total{command="RemoveItem"}`: 2,
			},
			exhausts: series{
				`cart_command_retries_exhausted_total{command="RemoveItem"}`: 1,
				`cart_command_retries_exhausted_total{command="ClearCart"}`:  1,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			c := m.Commands()
			tc.do(c)
			reg := m.Registry()
			sameSamples(t, "cart_commands_total", samples(t, reg, "cart_commands_total"), tc.done)
			sameSamples(t, "cart_command_conflicts_total", samples(t, reg, "cart_command_conflicts_total"), tc.conflicts)
			sameSamples(t, "cart_command_retries_exhausted_total", samples(t, reg, "cart_command_retries_exhausted_total"), tc.exhausts)
		})
	}
}

// TestCommandsCountOnTheirOwnRegistry: two services in one process (the
// local stack, the e2e tests) do not count into each other's registry.
func TestCommandsCountOnTheirOwnRegistry(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.Commands().Conflict("AddItem")
	b.Commands()
	sameSamples(t, "a", samples(t, a.Registry(), "cart_command_conflicts_total"),
		map[string]float64{`cart_command_conflicts_total{command="AddItem"}`: 1})
	sameSamples(t, "b", samples(t, b.Registry(), "cart_command_conflicts_total"), map[string]float64{})
}
