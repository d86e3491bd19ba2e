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
// Storage is in memory by default. With a data directory, writes go to an
// append-only log (length + CRC32-C framed) with group commit: the writes
// that arrive while an fsync runs are written together as one frame and
// share the next fsync. There is no timer, so a lone append waits for one
// fsync and a concurrent one for at most two (the one running, then its
// own); only past a group's 4 MiB cap does a write wait for a later round.
// A write is acknowledged, and becomes visible to reads and subscriptions,
// only once the fsync covering it has returned, so "acknowledged" still
// means durable and nobody sees an event a crash could take back. Writes
// are decided in arrival order on the state that includes those still in
// flight, so expected revisions, idempotent retries and $all order are what
// one fsync per append would give. A failed write or fsync fails every write
// in flight and the store fails closed: it refuses writes until restarted,
// and reads keep serving what was synced (see store.fail for why). On start
// the log is replayed and a torn final frame, never acknowledged, is
// discarded. In BenchmarkDurableConcurrentAppend (16 writers, one event per
// append, a busy 2-CPU VM) that took durable appends from about 1.7k/s with
// one fsync each to 4.5k–5.0k/s, about 7 appends per fsync.
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
