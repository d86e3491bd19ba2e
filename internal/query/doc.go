// Package query answers the read side's questions: the current cart from
// the read model (with read-your-writes waiting), and, in their own files,
// the audit trail and past states from the event log.
//
// Service holds the ports the queries need; each query is a method of
// Service in a file of its own (get_cart.go, ...), so that adding one adds a
// file and, if it needs a new port, a field.
package query
