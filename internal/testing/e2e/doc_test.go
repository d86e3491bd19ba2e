// Package e2e_test drives the whole product through its generated gRPC
// clients: command-svc and query-svc on the EventStoreDB stand-in and an
// embedded FerretDB, all in-process.
package e2e_test
