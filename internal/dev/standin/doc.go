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
// memory: gRPC flow control simply holds it back. The real server likewise
// never drops a subscriber for being behind; it falls back to catch-up reads
// when its live buffer for one overflows.
//
// A client that stops reading altogether is another matter: its send would
// stay blocked forever, holding a server goroutine and an HTTP/2 stream. So
// when one send of a subscription message has been blocked for
// Config.SlowSubscriberTimeout (30 s by default, WithSlowSubscriberTimeout
// in tests, negative to disable), the stand-in ends that subscription with
// ResourceExhausted "subscriber too slow: send blocked for …". Its goroutine
// ends at once; the transport keeps only what was already queued for the
// stream (gRPC's per-stream write quota, 64 KiB, plus one message) until the
// client reads or disconnects, so server resources per subscriber stay
// bounded either way. The status travels behind the events already in
// flight, so the client reads those first and then gets SubscriptionDropped
// carrying the status error: the v4 client passes the gRPC status through
// unchanged (ResourceExhausted rather than Unavailable, since the node is
// fine), and the project's eventstore adapter classes it as transient, so a
// subscriber resubscribes from its last position as after an outage.
// A client that keeps reading frees window space as it goes, so in practice
// only one that has stopped reading is dropped.
package standin
