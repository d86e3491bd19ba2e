// Package realstores runs the adapters' tests against the real engines the
// product is deployed on, the images of deploy/docker-compose.yml:
// EventStoreDB (eventstore/eventstore:24.10, an insecure single node with
// projections running) and MongoDB (mongo:7.0, a single-node replica set),
// each started in a container through testcontainers-go.
//
// Everywhere else the repository tests against stand-ins: the
// EventStoreDB-compatible server of package standin and an embedded FerretDB.
// The suites here are the same ones (the command.EventStore contract of
// package commandtest) or the same assertions (package eventstore's
// subscription and read tests, package readmodel's version guard and
// checkpoint tests), so that a pass here shows the stand-ins behave like the
// real thing where the product depends on it.
//
// What runs where:
//
//   - CI and machines without a Docker engine (such as the build box of this
//     repository): every test skips within milliseconds with the message
//     "no Docker engine reachable (DOCKER_HOST / /var/run/docker.sock)". The
//     engine is looked for where testcontainers-go looks (the tc.host and
//     docker.host properties of ~/.testcontainers.properties, DOCKER_HOST,
//     /var/run/docker.sock, the rootless and Docker Desktop sockets) and
//     dialled before testcontainers-go is asked for anything: without an
//     engine it can panic (setting up its Ryuk container) or wait on a dead
//     endpoint. Only when something accepts the connection does
//     testcontainers-go get to ping the engine, within 10 s, its panics
//     recovered; a failure there skips too.
//   - go test -short: skips too (starting the containers takes seconds, the
//     first image pull minutes).
//   - A developer machine with Docker: go test ./internal/testing/realstores/ starts
//     one EventStoreDB and one MongoDB container, runs the suites against
//     them and removes the containers when the tests end.
//
// testcontainers-go also starts its Ryuk container, which removes the test
// containers should the test binary be killed before its cleanups run. It
// is left on; on an engine where Ryuk cannot run (some rootless or Podman
// set-ups) set TESTCONTAINERS_RYUK_DISABLED=true: the tests still remove
// their containers themselves.
//
// StartEventStoreDB and StartMongoReplicaSet are exported for other
// integration tests that need a real engine; nothing in the product imports
// this package.
package realstores
