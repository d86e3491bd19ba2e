// Package standin is an EventStoreDB-compatible gRPC server for tests and the
// local stack, where no real EventStoreDB can run.
//
// It serves the server side of the protocol that the v4 Go client
// (github.com/EventStore/EventStore-Client-Go/v4) speaks, built on the client
// module's generated server interfaces:
//
//   - Streams: Append, Read (stream and $all, forwards and backwards, plain
//     reads and catch-up subscriptions, filtered $all subscriptions with
//     checkpoints), Delete (soft) and Tombstone (hard delete).
//   - ServerFeatures.GetSupportedMethods and a single-node Gossip.Read, so
//     both esdb:// and esdb+discover:// connection strings work.
//   - PersistentSubscriptions, Projections and Streams.BatchAppend (never used
//     by the v4 client) answer Unimplemented.
//
// The semantics follow the KurrentDB/EventStoreDB server source (optimistic
// concurrency and idempotence rules of IndexWriter.CheckCommit, soft delete
// and re-creation through $$stream metadata, tombstones, $maxCount/$maxAge/$tb,
// the default $all filter, checkpoint cadence of filtered subscriptions).
// Where the stand-in deliberately differs, the difference is documented on
// the type or function concerned.
//
// Storage is in memory by default. With a data directory, every append is
// written to an append-only log (length + CRC32-C framed, one frame per
// append so an append is all-or-nothing) and fsynced before it is
// acknowledged; on start the log is replayed and a torn final frame is
// discarded.
//
// Subscriptions pull from the in-memory index: each subscription keeps only a
// cursor into the committed log, so the catch-up to live hand-over has no gap
// and no duplicate by construction, and a slow subscriber costs no server
// memory (gRPC flow control simply holds it back, as with the real server,
// which falls back to catch-up reads instead of dropping slow subscribers).
package standin
