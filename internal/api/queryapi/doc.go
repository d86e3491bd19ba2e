// Package queryapi serves cart.v1.CartQueryService on top of query.Service:
// the current cart (with read-your-writes through min_version), its audit
// trail and time travel. Each RPC lives in its own file; the queries' own
// errors (a version past the end, a foreign page token, a version not
// reached yet) are mapped on top of the shared ones in package rpc.
package queryapi
