// Package commandapi serves cart.v1.CartCommandService: it maps each request
// to a domain command plus its envelope (user, expected version, command ID,
// reason and the audit headers), hands it to the write side, and maps the
// write side's errors (stale expected version, reused command ID) on top of
// the shared ones in package rpc. It knows no store: command-svc links it
// with the EventStoreDB adapter only.
package commandapi
