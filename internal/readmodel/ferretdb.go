package readmodel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Options says how the adapter uses the server. The zero value is for
// MongoDB: LoadCarts is one find with $in, a batch is one unordered bulk
// write of any size (the driver splits it at the server's
// maxWriteBatchSize), and every replace carries its version guard in the
// filter, atomically.
//
// FerretDB 1.24 on SQLite (the embedded server of the tests and the local
// stack) needs other choices, each pinned by a test in
// internal/dev/embeddedmongo/compat_test.go; FerretDBCompat sets them all.
// They are options, not the default, because each one costs MongoDB
// round trips or atomicity it does not need to give up.
type Options struct {
	// MaxBulkWrite caps the writes of one bulk write; 0 means no cap.
	// FerretDB never answers a bulk write of 100 or more replaces that
	// match existing documents: it holds one SQLite cursor per statement
	// and its pool has 100 (TestCompatBulkWriteDeadlocksAt100Matches).
	MaxBulkWrite int

	// PointReads makes LoadCarts (and the read-back of versions) read one
	// _id at a time, several at once, instead of one find with $in.
	// FerretDB pushes down to SQL only a filter that is exactly
	// {_id: <value>}; {_id: {$in: [...]}} decodes the whole collection
	// (TestCompatFilterPushdown).
	PointReads bool

	// RedoAfterWriteError writes a batch again one document at a time
	// after a bulk write failed on a duplicate key. FerretDB stops an
	// unordered bulk write at its first failed write and reports it at
	// index 0 (TestCompatBulkWriteReplaceOne), so the writes after it were
	// never attempted; MongoDB attempts them all. The redo is harmless
	// because every write is guarded.
	RedoAfterWriteError bool

	// IDOnlyFilter writes replaces with the filter {_id} alone, after
	// reading the stored versions by _id, instead of the atomic filter
	// {_id, version}. See "The version guard on FerretDB" at the end of
	// ferretdb.go.
	IDOnlyFilter bool

	// CollectionWritten, if not nil, is called once per Store after its
	// first write that inserted documents, i.e. once the carts collection
	// exists on a server that creates collections on first insert. The
	// local stack sets it to embeddedmongo's Server.EnsureIndexes, which
	// adds the index FerretDB's pushed-down _id filter can use to every
	// collection of the database, including the carts_<time> collections
	// a rebuild creates. An error is returned by that write (the documents
	// are written; the hook is tried again on the next write).
	CollectionWritten func(ctx context.Context, db string) error

	// Observe, if not nil, is told of every read (op "read": GetCart,
	// LoadCarts, LoadCheckpoint) and write (op "write": WriteCarts,
	// SaveCheckpoint) of a Store, with how long it took and its error, for
	// metrics. It is not a FerretDB workaround; it lives here because
	// these are the Client's options.
	Observe func(op string, d time.Duration, err error)
	// TracerProvider, if it records, gets a client span for every MongoDB
	// command sent under a traced operation (see tracing.go); nil: none.
	TracerProvider trace.TracerProvider
}

// FerretDBCompat returns the options for FerretDB 1.24 on SQLite: bulk
// writes of at most 50 (half the deadlock threshold, as fast as larger
// batches there), point reads, a one-by-one redo after a write error, and
// replaces filtered by _id alone. The caller adds CollectionWritten when it
// can reach the SQLite files (the embedded server). IDOnlyFilter assumes a
// single writer per carts collection (the projector writing through
// Store.Fenced); where several unfenced writers share one, turn it off.
func FerretDBCompat() Options {
	return Options{
		MaxBulkWrite:        50,
		PointReads:          true,
		RedoAfterWriteError: true,
		IDOnlyFilter:        true,
	}
}

// The version guard on FerretDB
//
// On MongoDB a replace's filter {_id, version: expected} is the guard: the
// server matches and writes atomically, so two writers cannot both move a
// document from one version. On FerretDB 1.24 that filter is evaluated by
// FerretDB over every document of the collection
// (TestCompatFilterPushdown), so a write costs more the bigger the
// collection (BenchmarkReplaceOnFerretDB, the project's documents: 79 ms a
// replace at 1,000 documents, 0.9 s at 10,000, 5.9 s at 100,000), and it is
// not even atomic there (TestCompatConditionalUpdateIsNotAtomic). So with
// IDOnlyFilter the guard moves out of the filter: WriteCarts reads the
// stored versions by _id (pushed down), drops the writes that are behind or
// already made and replaces the others by {_id} alone, which FerretDB
// pushes down and, with embeddedmongo's expression index, serves by index
// search: 3.1, 3.2 and 3.3 ms (read plus write) at 1,000, 10,000 and
// 100,000 documents. Between the read and the write nothing stops another
// writer, so the mode is correct only with a single writer per collection:
// the projector holding the lease, writing through Store.Fenced, which
// checks the lease before each write. MongoDB keeps the atomic filter,
// which needs no such assumption. The projector's own replaces (Known:
// from its document cache) skip even the read while the lease stays at
// the epoch of the projector's start, which leaves one write a cart.
