// Package cartv1 holds the Go code generated from the cart.v1 protos: the
// messages and the gRPC clients and servers of the command, query and admin
// services. Only this file is written by hand; `make generate` rewrites the
// rest.
package cartv1
