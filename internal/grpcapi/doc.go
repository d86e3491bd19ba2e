// Package grpcapi holds the gRPC servers of both services (commands, queries
// and the read model's admin), the one place that maps domain errors to gRPC
// status codes, and the interceptors and server options they share.
package grpcapi
