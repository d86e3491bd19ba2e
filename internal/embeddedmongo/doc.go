// Package embeddedmongo runs FerretDB v1.24.2 (a MongoDB wire-protocol server) with its SQLite
// backend inside the current process, so that tests and the local stack can use the real MongoDB
// driver without a MongoDB installation.
package embeddedmongo
