// Package command handles the commands that change carts: validate, load the
// cart, check idempotency, decide (package cart), append with optimistic
// concurrency, retry on conflicts.
//
// The package declares the port it needs of the event log (EventStore);
// package eventstore implements it against EventStoreDB, and
// commandtest.MemoryStore is an in-memory stand-in for fast tests.
//
// # Loading cost
//
// A cart is loaded from its latest snapshot plus the events after it, so a
// command reads at most about Options.SnapshotEvery events (default 100) plus
// one, however long the cart's history. Snapshots are a cache: they carry a
// schema number, the user and the revision and command ID of the last event
// they cover, and one that does not match the stream in every respect is
// ignored (full replay), never trusted. Writing one is best effort: a failed
// snapshot write is logged and never fails the command.
//
// # Cache and per-cart order
//
// A Handler keeps the decided state (cart, version, window) of its most
// recently used carts, at most Options.CacheSize (default 10,000), and
// serializes the commands on each cart: a command on a cached cart reads
// nothing and costs one append, at the cached version. Several instances
// stay correct because that expected revision decides: when another instance
// wrote, the append fails, the handler reads only the events after the
// cached version and decides again. A command that would end without
// writing (refused by a rule, a no-op) on a cached cart first reads those
// events too, since no append would tell it the cache is behind. An append
// that may or may not have written, or a catch-up that fails, drops the
// cart from the cache; the next command loads it from its snapshot.
//
// # Idempotency window
//
// A caller may send a command_id (a UUID). Every event records the ID of the
// command that wrote it and a fingerprint of that command (SHA-256 over the
// command's name, the user and its canonical payload, truncated to 128 bits;
// expected_version, reason and the headers are not part of it). Loading a
// cart folds the IDs of its last Options.WindowSize commands (default 100
// commands per cart: ample for client retries, and small enough that the
// snapshot every command reads stays small; BenchmarkCommandOnLongHistory
// shows a 1,000-entry window doubling a command's cost) into a window, kept
// in the snapshots too:
//
//   - the same ID with the same fingerprint answers with the first attempt's
//     response (the version after that command; for a checkout also what was
//     bought) and writes nothing, also when the first attempt's append
//     succeeded but its response was lost, and across restarts, since the
//     window is rebuilt from the stream;
//   - the same ID with another fingerprint is ErrCommandIDReused;
//   - an ID older than the last WindowSize commands of that cart is not
//     recognised: the command is decided again as a new one;
//   - a command that wrote no events (clearing an empty cart, setting a
//     quantity to its current value) leaves no trace, so a resend is decided
//     again (and is again a no-op, answering the current version);
//   - without a command_id the server makes one up and nothing is deduplicated.
//
// Event IDs are derived from the command ID and fingerprint, so EventStoreDB's
// own idempotence check also recognises a batch resent at the same revision.
// The ID of a checkout is derived from the command ID as well.
package command
