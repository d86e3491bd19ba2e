package command

import (
	"context"
	"errors"

	"github.com/acme/cart/internal/cart"
)

// Observer is told how commands end and how often they met concurrent
// writes, for metrics; the service gives the Handler one (Options.Observer)
// without this package knowing what records it. Its methods must be quick
// and safe for concurrent use. command is the command's name (AddItem, ...).
type Observer interface {
	// CommandDone is called once per Handle, with one of the Outcome values.
	CommandDone(command, outcome string)
	// Conflict is called for every append refused because the stream
	// moved on (a cached cart that was behind, or another writer that
	// won), each followed by another attempt.
	Conflict(command string)
	// RetriesExhausted is called when a command gives up after
	// Options.MaxAttempts conflicts.
	RetriesExhausted(command string)
}

// Outcomes told to Observer.CommandDone.
const (
	OutcomeOK = "ok"
	// OutcomeRejected: the command was refused with an answer the caller
	// can act on: a business rule, bad input, its expected version or
	// command ID, or conflicts on every attempt.
	OutcomeRejected = "rejected"
	// OutcomeCanceled: the caller went away before the answer.
	OutcomeCanceled = "canceled"
	// OutcomeError: the service or a store failed (unavailable, timed out,
	// an undecodable stream, ...).
	OutcomeError = "error"
)

// Outcome classifies a Handle error as an Observer is told it.
func Outcome(err error) string {
	var (
		rule    *cart.RuleError
		invalid *cart.ValidationError
	)
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &rule), errors.As(err, &invalid),
		errors.Is(err, ErrVersionMismatch), errors.Is(err, ErrCommandIDReused),
		errors.Is(err, cart.ErrConcurrencyConflict):
		return OutcomeRejected
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	default:
		return OutcomeError
	}
}

// nopObserver is the Observer of a Handler given none.
type nopObserver struct{}

func (nopObserver) CommandDone(string, string) {}
func (nopObserver) Conflict(string)            {}
func (nopObserver) RetriesExhausted(string)    {}

// commandName names cmd for the Observer, even a nil one.
func commandName(cmd cart.Command) string {
	if cmd == nil {
		return "unknown"
	}
	return cmd.Name()
}
