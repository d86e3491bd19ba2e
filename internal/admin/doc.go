// Package admin holds query-svc's read-model operations: rebuilding the read
// model from the event log beside the one in use and switching to it,
// verifying the read model against a replay of the log, and the parking
// lot of events the projector could not apply (list and replay).
//
// Live is the read model in use: the carts collection that queries read and
// the live projector writes, switchable at run time. Readers go through
// Live.GetCart, which always reads the current collection and never one
// that a switch has retired; the switch itself is recorded in MongoDB (the
// Catalog) so that every replica follows it.
//
// Service runs the operations, one at a time per process (ErrBusy
// otherwise), reporting progress (events/s, position, ETA) to a callback and
// the log. Like package projection it declares the ports it needs
// (CartStore, Catalog, ParkingLot, EventLog) and knows neither MongoDB nor
// EventStoreDB; package readmodel and the eventstore adapter implement them.
package admin
