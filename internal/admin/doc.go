// Package admin holds query-svc's read-model operations: rebuilding the read
// model from the event log beside the one in use and switching to it,
// verifying the read model against a replay of the log, and the parking
// lot of events the projector could not apply (list and replay).
//
// It works on the live read model (package readside) through its seams: a
// rebuild holds the live projector, builds a fresh collection and releases
// the live projector onto it; a verification replays into a scratch
// collection and compares. Service runs the operations, one at a time per
// process (ErrBusy otherwise), reporting progress (events/s, position, ETA)
// to a callback and the log. It declares the ports it needs (ParkingLot,
// EventLog) in the log's vocabulary (package eventlog) and knows neither
// MongoDB nor EventStoreDB; package readmodel and the eventstore adapter
// implement them.
package admin
