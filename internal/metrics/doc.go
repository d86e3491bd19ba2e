// Package metrics is what the services export to Prometheus: one registry
// per service (never the global default, so tests and the one-process local
// stack can run several services side by side), the Go and process
// collectors, the gRPC server metrics of go-grpc-middleware's Prometheus
// provider, and the cart_* series the dashboard and alert rules in deploy/
// are written against (deploy/doc_test.go reads their names from New's
// registry and checks the dashboard and alerts against them).
//
// The instrumented packages (command, eventstore, readmodel, projection)
// do not import Prometheus: each offers a small hook in its own terms, and
// the types here implement those hooks. This package imports no product
// package either, so command-svc links no read-side code through it.
//
// Serve runs the private HTTP listener with /metrics and, when asked, the
// pprof handlers on the same mux (never on http.DefaultServeMux).
package metrics
