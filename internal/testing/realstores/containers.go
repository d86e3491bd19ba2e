package realstores

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/acme/cart/internal/eventstore"
)

// The images of deploy/docker-compose.yml: what these tests prove the
// product against is what it is deployed on. Change them together.
const (
	// EventStoreDBImage is the last EventStoreDB release on Docker Hub
	// before the KurrentDB rename; the v4 client speaks to it natively.
	EventStoreDBImage = "eventstore/eventstore:24.10"
	// MongoImage is the MongoDB release the read model is deployed on.
	MongoImage = "mongo:7.0"
)

const (
	esdbPort  = "2113/tcp"
	mongoPort = "27017/tcp"
	// mongoReplicaSet is the replica set name, as in the compose file.
	mongoReplicaSet = "rs0"
	// readyProbeUser owns the snapshot stream StartEventStoreDB writes to
	// learn that the node accepts writes. Snapshot streams are outside the
	// "cart-" prefix, so no cart read or subscription ever sees it.
	readyProbeUser = "realstores-ready-probe"
)

// Bounds on start-up. The first run pulls the images, which can take
// minutes; after that a container is up in seconds.
const (
	startTimeout = 5 * time.Minute
	readyTimeout = 2 * time.Minute
	probeEvery   = 250 * time.Millisecond
)

// StartEventStoreDB starts an EventStoreDB node (EventStoreDBImage, insecure,
// single node, in memory, projections running as in the compose file) for
// the rest of tb, and returns an esdb:// connection string that is ready
// for writes. It skips tb when no Docker engine is reachable or -short is
// set, and fails it if the engine cannot start or reach the node.
func StartEventStoreDB(tb testing.TB) string {
	tb.Helper()
	requireEngine(tb, EventStoreDBImage)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	ctr := start(ctx, tb, testcontainers.ContainerRequest{
		Image: EventStoreDBImage,
		Env: map[string]string{
			"EVENTSTORE_CLUSTER_SIZE":               "1",
			"EVENTSTORE_INSECURE":                   "true",
			"EVENTSTORE_NODE_PORT":                  "2113",
			"EVENTSTORE_RUN_PROJECTIONS":            "All",
			"EVENTSTORE_START_STANDARD_PROJECTIONS": "true",
			// Unlike the compose file: nothing here outlives the container,
			// and an in-memory node starts faster.
			"EVENTSTORE_MEM_DB": "true",
		},
		ExposedPorts: []string{esdbPort},
		// /health/live answers with a 2xx (204 No Content); any 2xx is
		// taken, as the client's own container tests do.
		WaitingFor: wait.ForHTTP("/health/live").
			WithPort(esdbPort).
			WithStatusCodeMatcher(func(status int) bool { return status >= 200 && status < 300 }).
			WithStartupTimeout(readyTimeout),
	})
	conn := "esdb://" + hostPort(ctx, tb, ctr, esdbPort) + "?tls=false"
	awaitWrites(ctx, tb, conn)
	return conn
}

// awaitWrites waits until the node accepts a write through the adapter: a
// live HTTP endpoint does not by itself mean the node has become leader.
func awaitWrites(ctx context.Context, tb testing.TB, conn string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	s, err := eventstore.Open(ctx, conn, nil)
	if err != nil {
		tb.Fatalf("open EventStoreDB at %s: %v", conn, err)
	}
	defer s.Close()
	for {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.WriteSnapshot(wctx, readyProbeUser, []byte(`{}`))
		wcancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("EventStoreDB at %s accepted no write within %s: %v", conn, readyTimeout, err)
		case <-time.After(probeEvery):
		}
	}
}

// StartMongoReplicaSet starts MongoDB (MongoImage) as a single-node replica
// set, as the compose file runs it, for the rest of tb, and returns a
// mongodb:// URI on which the node is already primary. It skips tb when no
// Docker engine is reachable or -short is set, and fails it if the engine
// cannot start the node or the replica set does not come up.
//
// The member is configured as localhost:27017, a name mongod recognises as
// itself inside the container (it refuses a configuration naming no member
// it recognises); the host reaches it on a mapped port instead, so the URI sets directConnection=true (talk to that
// one server, never to the members' advertised names) and still names the
// replica set, which the driver then checks the server belongs to.
func StartMongoReplicaSet(tb testing.TB) string {
	tb.Helper()
	requireEngine(tb, MongoImage)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	ctr := start(ctx, tb, testcontainers.ContainerRequest{
		Image:        MongoImage,
		Cmd:          []string{"mongod", "--replSet", mongoReplicaSet, "--bind_ip_all"},
		ExposedPorts: []string{mongoPort},
		WaitingFor: wait.ForAll(
			wait.ForLog("Waiting for connections"),
			wait.ForListeningPort(mongoPort),
		).WithDeadline(readyTimeout),
	})

	// mongosh prints the value of the last expression: 1 on success; a
	// refusal throws, which exits non-zero with the server's message.
	initiate := fmt.Sprintf("rs.initiate({_id: '%s', members: [{_id: 0, host: 'localhost:27017'}]}).ok", mongoReplicaSet)
	code, out, err := mongosh(ctx, ctr, initiate)
	if err != nil || code != 0 || out != "1" {
		tb.Fatalf("rs.initiate: exit code %d, error %v, output %q", code, err, out)
	}
	primary := wait.ForExec([]string{"mongosh", "--quiet", "--eval", "db.hello().isWritablePrimary"}).
		WithResponseMatcher(func(body io.Reader) bool {
			b, err := io.ReadAll(body)
			return err == nil && strings.TrimSpace(string(b)) == "true"
		}).
		WithPollInterval(probeEvery).
		WithStartupTimeout(readyTimeout)
	if err := primary.WaitUntilReady(ctx, ctr); err != nil {
		tb.Fatalf("the replica set member did not become primary: %v", err)
	}
	return "mongodb://" + hostPort(ctx, tb, ctr, mongoPort) + "/?directConnection=true&replicaSet=" + mongoReplicaSet
}

// mongosh evaluates js in the container's shell and returns its exit code
// and output (stdout and stderr).
func mongosh(ctx context.Context, ctr testcontainers.Container, js string) (int, string, error) {
	code, r, err := ctr.Exec(ctx, []string{"mongosh", "--quiet", "--eval", js}, tcexec.Multiplexed())
	if err != nil {
		return code, "", fmt.Errorf("exec mongosh: %w", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return code, string(b), fmt.Errorf("read mongosh output: %w", err)
	}
	return code, strings.TrimSpace(string(b)), nil
}

// start runs req and removes the container when tb ends. testcontainers-go
// may return a container together with an error, which is removed too.
func start(ctx context.Context, tb testing.TB, req testcontainers.ContainerRequest) testcontainers.Container {
	tb.Helper()
	ctr, err := run(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req,
		Started:          true,
		Logger:           tclog.TestLogger(tb),
	})
	tb.Cleanup(func() {
		// The data is disposable: a short stop, then a forced removal.
		if err := testcontainers.TerminateContainer(ctr, testcontainers.StopTimeout(time.Second)); err != nil {
			tb.Errorf("remove the %s container: %v", req.Image, err)
		}
	})
	if err != nil {
		tb.Fatalf("start %s: %v", req.Image, err)
	}
	return ctr
}

// run is testcontainers.GenericContainer with its panics turned into
// errors, so that a failure to start reports what went wrong.
func run(ctx context.Context, req testcontainers.GenericContainerRequest) (ctr testcontainers.Container, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers-go panicked: %v", r)
		}
	}()
	return testcontainers.GenericContainer(ctx, req)
}

// hostPort is where the host reaches the container's port.
func hostPort(ctx context.Context, tb testing.TB, ctr testcontainers.Container, port string) string {
	tb.Helper()
	h, err := ctr.Host(ctx)
	if err != nil {
		tb.Fatalf("container host: %v", err)
	}
	p, err := ctr.MappedPort(ctx, port)
	if err != nil {
		tb.Fatalf("mapped port of %s: %v", port, err)
	}
	return net.JoinHostPort(h, p.Port())
}
