// Package readmodel is the MongoDB adapter of query-svc: the only package
// that imports the MongoDB driver. It stores the projector's documents (one
// per user in a carts collection) and checkpoints (one per projector name in
// a checkpoints collection) and serves them to the queries.
//
// It implements projection.Store and the reader port of package query, and
// translates the driver's failures into the domain's: network and server
// selection problems become cart.ErrUnavailable.
//
// It is written for MongoDB: one find with $in per batch, one unordered
// bulk write per batch, replaces guarded atomically by {_id, version}.
// FerretDB 1.24 on SQLite (the embedded server of tests and the local
// stack) needs other choices, which are Options, not the default:
// FerretDBCompat sets them, and ferretdb.go says why each one exists and
// which compat test in internal/dev/embeddedmongo pins the bug. Either way
// a document is written whole: no transactions, positional or arrayFilters
// updates, or $elemMatch.
//
// Schema (field names are a contract with operators' tooling):
//
//	carts: {
//	  _id:          string   user ID
//	  items:        [ { product_id: string, quantity: int32,
//	                    unit_price: { currency_code: string, units: int64, nanos: int32 } } ]
//	                         lines in the order their products were first added
//	  version:      int64    stream revision of the last event applied; -1: none
//	  updated_at:   date     when that event was recorded (millisecond precision); absent for -1
//	  stale:        bool     an event of this cart could not be applied (it was parked)
//	  stale_reason: string   which event and why; absent unless stale
//	}
//	checkpoints: {
//	  _id:        string     projector name (the name of the carts collection it writes)
//	  commit:     int64      $all commit position the projector has stored everything up to
//	  prepare:    int64      $all prepare position
//	  updated_at: date       when it was stored
//	  epoch:      int64      lease epoch of the writer (Store.Fenced); absent if unfenced.
//	                         A document with an epoch and no commit is a claim only.
//	}
//	leases, lease_claims:    the projector's lease and its epochs (Lease)
//	readmodel_meta: { _id: "active", carts: string, updated_at: date }
//	                         the carts collection in use (Catalog); absent: "carts"
//	parked_events:           events the projector could not apply (ParkingLot)
//
// Collection names are per Store (Collections), so that a rebuild can
// project into a fresh carts collection (carts_<time>) while queries read
// the current one, and then switch by updating readmodel_meta.
package readmodel
