// Package readside is query-svc's live read model: the carts collection in
// use, which queries read, and the live projector that writes it.
//
// Live reads the active collection's name from the Catalog (recorded in
// MongoDB so that every replica follows it), runs the projector on it and
// switches readers and projector over when a rebuild records a new one.
// Readers go through Live.GetCart, which always reads the current
// collection and never one that a switch has retired. The read-model
// operations (package admin: rebuild, verify, parked events) work through
// Live's exported seams (Hold, Release, Exclusive, Current); this package
// knows nothing of them.
//
// Like package projection it declares the ports it needs (CartStore,
// Catalog) and knows neither MongoDB nor EventStoreDB.
package readside
