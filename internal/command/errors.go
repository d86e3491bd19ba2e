package command

import "errors"

// Errors of command handling that are not business rules; the API maps them
// to gRPC codes (ABORTED and ALREADY_EXISTS).
var (
	// ErrVersionMismatch: the caller's expected version is not the cart's.
	// It is never retried: the caller asked for exactly that version.
	ErrVersionMismatch = errors.New("the cart is not at the expected version")
	// ErrCommandIDReused: a command ID came again with a different command.
	ErrCommandIDReused = errors.New("command_id was already used for a different command")
)
