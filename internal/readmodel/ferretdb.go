package readmodel

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
}

// FerretDBCompat returns the options for FerretDB 1.24 on SQLite: bulk
// writes of at most 50 (half the deadlock threshold, as fast as larger
// batches there), point reads and a one-by-one redo after a write error.
func FerretDBCompat() Options {
	return Options{
		MaxBulkWrite:        50,
		PointReads:          true,
		RedoAfterWriteError: true,
	}
}
