// Package eventstore is the EventStoreDB adapter: the only package that
// imports the EventStoreDB client (github.com/EventStore/EventStore-Client-Go/v4/esdb).
//
// It gives the rest of the product what it needs of the event log in the
// product's own terms:
//
//   - the read side reads a user's stream (ReadStream), follows every cart
//     stream through a catch-up subscription to $all filtered on the "cart-"
//     prefix (SubscribeAll) and asks for the head of the log (HeadPosition);
//   - the write side loads a cart's events already decoded (LoadEvents),
//     appends a command's events with optimistic concurrency (AppendEvents)
//     and keeps one snapshot per cart (ReadSnapshot, WriteSnapshot);
//   - health checks ask whether the store answers at all (Ping).
//
// The client's errors are translated here, at the boundary, into the
// domain's: cart.ErrConcurrencyConflict for a wrong expected revision,
// cart.ErrNotFound, and cart.ErrUnavailable for every transport or
// availability problem, always wrapped with the operation's name.
//
// The v4 client is guarded (conn.go): node discovery never gives up, calls
// honour their contexts even while the client is discovering, only one call
// probes a store that is down while the others fail fast with
// cart.ErrUnavailable, and the client is closed only after its last call.
//
// Streams: a user's cart lives in "cart-<userID>" (StreamPrefix). Snapshots
// live in "cartsnapshot-<userID>" on purpose outside that prefix, so that the
// projector's "cart-" filter never sees them; the snapshot stream keeps only
// its latest event ($maxCount 1).
package eventstore
