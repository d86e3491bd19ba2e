// Package cart holds the shopping cart's domain: its state, the commands that
// change it, the events that record the changes, and the rules that decide
// which events a command produces.
//
// Everything here is pure Go with no I/O so that the same rules serve the
// write model (command-svc), the read model (query-svc's projector) and
// replays of history (temporal queries), and so they can be tested as
// Given(events) / When(command) / Then(events or error).
//
// The write flow is: fold the stream's events into a Cart with Apply, call
// Decide with a command, append the events it returns.
package cart
