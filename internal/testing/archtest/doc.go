// Package archtest holds the test that keeps the tree's architecture true:
// product code never imports dev tooling or test kits, each store's client
// is imported by its adapter only, command-svc links no read side and no
// MongoDB, query-svc links no command handling, and neither service links
// a stand-in, FerretDB, testcontainers or a test kit. It reads the real
// import graph with `go list`, so a rule broken anywhere fails `make test`.
package archtest
