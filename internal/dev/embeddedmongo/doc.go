// Package embeddedmongo runs FerretDB v1.24.2 (a MongoDB wire-protocol server) with its SQLite
// backend inside the current process, so that tests and the local stack can use the real MongoDB
// driver (go.mongodb.org/mongo-driver/v2) without a MongoDB installation.
//
// # Using it in tests
//
// Start a server per test with [StartForTest]: it costs about 2-3 ms (10 ms under -race) and a
// temporary directory, and a fresh server keeps collections small, which matters because the
// SQLite backend slows down as collections grow (see Performance). Sharing one server per test
// binary is possible but buys little; if you do it, start it in TestMain and give each test its
// own database with [Server.NewDatabaseName]:
//
//	var srv *embeddedmongo.Server
//
//	func TestMain(m *testing.M) {
//		dir, _ := os.MkdirTemp("", "mongo")
//		srv, _ = embeddedmongo.Start(context.Background(), embeddedmongo.Config{Listen: "127.0.0.1:0", DataDir: dir})
//		code := m.Run()
//		_ = srv.Close()
//		_ = os.RemoveAll(dir)
//		os.Exit(code)
//	}
//
// Disconnect your clients before the server closes (register their Disconnect with t.Cleanup
// after calling StartForTest): FerretDB waits up to 3 s for connected clients when it shuts down.
// The URI needs no options: the driver sees a standalone server, so it never uses retryable
// writes or transactions on its own.
//
// # What works (pinned by compat_test.go, through the v2 driver)
//
//	case                                   result on FerretDB 1.24.2 / SQLite
//	1 ReplaceOne {_id, version: N}, upsert  works. If _id exists at another version, the upsert
//	                                        tries an insert: WriteException code 11000
//	                                        (mongo.IsDuplicateKeyError), document unchanged. A
//	                                        replayed event and a gap give the same error; read the
//	                                        document to tell them apart.
//	2 ReplaceOne {_id, version: {$lt: N}}   works, same 11000 when the stored version is >= N.
//	3 BulkWrite of ReplaceOne models        works, with differences from MongoDB: "ordered" is
//	                                        ignored and the batch always stops at the first failed
//	                                        write (earlier writes stay applied, later ones are not
//	                                        attempted, even unordered); the BulkWriteException's
//	                                        write error always has Index 0 (so its Request is model
//	                                        0, not the failed one); UpsertedIDs is keyed by upsert
//	                                        count, not by model index. On such an error, redo the
//	                                        batch one write at a time (the guard makes that safe).
//	  BulkWrite, >= 100 models that match   NEVER RETURNS: the database is wedged until the server
//	  existing documents                    closes (FerretDB holds a SQLite cursor per statement;
//	                                        its pool has 100). Split batches (50 is safe). Upserts
//	                                        that match nothing are not affected.
//	4 FindOne (+ ErrNoDocuments), Find with works.
//	  filter+sort+limit, CountDocuments,
//	  DeleteMany, Drop (also of a missing
//	  collection), ListCollectionNames
//	  renameCollection (admin command)      works within one database without dropTarget.
//	                                        dropTarget:true -> NotImplemented (238); existing
//	                                        target -> NamespaceExists (48); missing source ->
//	                                        NamespaceNotFound (26). Swapping in a rebuilt
//	                                        collection is drop + rename, not atomic.
//	5 UpdateOne $set + $inc, upsert         works (checkpoint document). uint64 values round-trip
//	                                        up to 2^63-1; above that the driver refuses to encode.
//	6 CreateIndex; unique index             works; a unique violation is 11000.
//	7 bson struct round trip                exact int64 beyond 2^53, bool, time.Time (UTC, ms),
//	                                        nested arrays of sub-documents; stored BSON types are
//	                                        the ones written.
//	8 transactions                          unsupported: WithTransaction fails with CommandError
//	                                        FailedToParse (9), unknown field "startTransaction";
//	                                        nothing is written.
//	  change streams (Watch)                unsupported: CommandError NotImplemented (238).
//	9 filter pushdown (explain)             only a filter of exactly {_id: <string>} is pushed down
//	                                        to SQL; {_id: {$in}}, {_id, version}, {_id: {$eq}} are
//	                                        evaluated by FerretDB over every document.
//	10 conditional update, concurrently     NOT ATOMIC: FerretDB reads the matches, then writes them
//	                                        back by _id in another transaction; two compare-and-set
//	                                        updates ({_id, epoch: 0}) can both match. Only inserts
//	                                        (the unique _id) arbitrate atomically.
//	11 update pipeline ($$NOW)              unsupported: TypeMismatch (the update must be a
//	                                        document), so no server clock in writes.
//
// # The _id expression index
//
// When FerretDB pushes {_id: v} down, its SQL filters on _ferretdb_sjson->'$._id', but its own
// unique _id index is on _ferretdb_sjson->"_id", which SQLite does not match: every read, replace
// or delete by _id scans the table. [Server.EnsureIndexes] (one database) and
// [Server.EnsureAllIndexes] create an index on FerretDB's exact expression for every collection
// listed in FerretDB's metadata table; Config.IndexInterval runs that periodically, for
// collections created later (a rebuild's carts_<time>) by programs that cannot call it.
// index_test.go proves the plan changes from SCAN to SEARCH ... USING INDEX.
//
// # Performance (2-core AMD EPYC, without -race; see bench_test.go)
//
//	Start + Close                                  2-3 ms
//	ReplaceOne upsert, filter {_id, version}       ~400/s on 1 doc, ~130/s on 100, ~60/s on 1000
//	ReplaceOne upsert, filter {_id}                ~600/s on 1 doc, ~250/s on 100, ~55/s on 1000
//	BulkWrite of 50 guarded ReplaceOne models      ~170 upserts/s (no faster than single writes)
//	FindOne by _id                                 ~1 ms on 1 doc, ~6 ms on 1000
//
// Only a filter that is exactly {_id: <string or ObjectID>} is pushed down to SQL; any other
// filter, the version guard included, decodes the whole collection; and even a pushed-down one
// scans the table unless EnsureIndexes has run. With both (readmodel.FerretDBCompat plus the
// index) the read model's replace of a cart costs the same at 1,000, 10,000 and 100,000
// documents, 3.1-3.3 ms, where the filter {_id, version} without the index took 79 ms, 0.9 s and
// 5.9 s (BenchmarkReplaceOnFerretDB in package readmodel; the figures above are older, with
// one-field documents). Under -race everything is
// several times slower (a single upsert about 15 ms), and a bulk update with many matching
// statements slows down superlinearly (99 take about 10 s): keep test data to a handful of
// documents. SQLite runs in WAL mode with synchronous=NORMAL: durable across process crashes,
// may lose the last commits on power loss.
//
// # Logging
//
// FerretDB logs every connection at Info level and dumps every failed command reply at Warn
// level. Without a Config.Logger the server logs at Warn level to stderr and drops those dumps
// (the client receives the errors anyway), including the driver's harmless endSessions call on
// Disconnect, which FerretDB does not know.
package embeddedmongo
