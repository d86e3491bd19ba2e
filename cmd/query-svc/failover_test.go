package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/querysvc"
	"github.com/acme/cart/internal/readmodel"
	"github.com/acme/cart/internal/testing/logtest"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// failoverTTL is the replicas' lease TTL: short, so that the takeover
// after a kill comes within seconds.
const failoverTTL = 2 * time.Second

// replicaProc is a query-svc process.
type replicaProc struct {
	cmd   *exec.Cmd
	addr  string
	log   *logtest.Buffer
	query cartv1.CartQueryServiceClient
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startProc(t *testing.T, bin, name string, args ...string) *replicaProc {
	t.Helper()
	p := &replicaProc{addr: freeAddr(t), log: &logtest.Buffer{}}
	p.cmd = exec.Command(bin, append([]string{"--listen", p.addr}, args...)...)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")} // no CART_* from the caller
	p.cmd.Stderr, p.cmd.Stdout = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("%s (pid %d) log:\n%s", name, p.cmd.Process.Pid, p.log.String())
		}
	})
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p.query = cartv1.NewCartQueryServiceClient(conn)
	return p
}

// pidOf reads the process ID out of a holder ID (host-pid-random).
func pidOf(holder string) int {
	f := strings.Split(holder, "-")
	if len(f) < 3 {
		return 0
	}
	pid, _ := strconv.Atoi(f[len(f)-2])
	return pid
}

// TestFailoverAfterKill: two query-svc processes on one read model; the
// one holding the projector lease is killed with SIGKILL while events keep
// coming; the other takes over, and every cart ends at exactly its last
// version with each event applied once (every event adds a new product,
// so one applied twice would show as an extra line).
func TestFailoverAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds query-svc and runs two processes on EventStoreDB stand-in and FerretDB")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "query-svc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	esdb := standin.Start(t)
	fdb := embeddedmongo.StartForTest(t)
	db := fdb.NewDatabaseName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	es, err := eventstore.Open(ctx, esdb.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	rc, err := readmodel.ConnectWith(ctx, fdb.URI(), readmodel.FerretDBCompat())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(context.Background())
	observer := rc.Lease(db, querysvc.ProjectorLease, "observer", failoverTTL)

	args := []string{
		"--esdb", esdb.ConnectionString(), "--mongo-uri", fdb.URI(), "--mongo-db", db, "--mongo-compat", "ferretdb",
		"--admin-listen", "", "--insecure-no-auth", "--lease-ttl", failoverTTL.String(), "--log-level", "debug",
	}
	procs := map[int]*replicaProc{}
	for _, name := range []string{"replica-1", "replica-2"} {
		p := startProc(t, bin, name, args...)
		procs[p.cmd.Process.Pid] = p
	}
	holderPID := func() int {
		h, err := observer.Holder(ctx)
		if err != nil {
			return 0
		}
		return pidOf(h)
	}
	eventuallyT(t, "a replica holds the lease", func() bool { return procs[holderPID()] != nil })
	victimPID := holderPID()
	victim := procs[victimPID]
	var survivor *replicaProc
	for pid, p := range procs {
		if pid != victimPID {
			survivor = p
		}
	}

	users := make([]string, 8)
	versions := make(map[string]int64, len(users))
	for i := range users {
		users[i] = fmt.Sprintf("user-%d", i)
		versions[users[i]] = -1
	}
	appendRound := func() {
		for _, u := range users {
			meta := cart.Metadata{CommandID: fmt.Sprintf("%s-%d", u, versions[u]+1), CommandType: "AddItem", Time: time.Now().UTC()}
			ev := cart.ItemAdded{ProductID: fmt.Sprintf("sku-%d", versions[u]+1), Quantity: 1, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 1}}
			v, err := es.AppendEvents(ctx, u, versions[u], meta, []cart.Event{ev})
			if err != nil {
				t.Fatal(err)
			}
			versions[u] = v
		}
	}
	for range 5 {
		appendRound()
	}
	// The holder is projecting (read-your-writes through it).
	waitCart(t, ctx, victim, users[0], versions[users[0]])

	// Kill it in the middle of more events.
	for range 5 {
		appendRound()
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = victim.cmd.Wait()
	killed := time.Now()
	for range 5 {
		appendRound()
	}

	eventuallyT(t, "the survivor takes the lease over", func() bool { return holderPID() == survivor.cmd.Process.Pid })
	// A measurement, not an assertion: the target is two lease periods.
	t.Logf("takeover %v after the kill (lease TTL %v: %.2f periods)", time.Since(killed).Round(time.Millisecond),
		failoverTTL, time.Since(killed).Seconds()/failoverTTL.Seconds())
	for _, u := range users {
		waitCart(t, ctx, survivor, u, versions[u])
	}
}

// eventuallyT polls cond until it holds or a generous deadline passes.
func eventuallyT(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCart asks p for user's cart at min_version v until it answers
// (within a generous deadline) and checks that it holds exactly the v+1
// lines the events added, each once.
func waitCart(t *testing.T, ctx context.Context, p *replicaProc, user string, v int64) {
	t.Helper()
	var (
		c       *cartv1.Cart
		lastErr error
	)
	eventuallyT(t, fmt.Sprintf("%s reaches version %d (last error: %v)", user, v, lastErr), func() bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := p.query.GetCart(cctx, &cartv1.GetCartRequest{UserId: user, MinVersion: proto.Int64(v)})
		lastErr = err
		c = resp.GetCart()
		return err == nil
	})
	if c.GetVersion() != v || len(c.GetItems()) != int(v+1) || c.GetItemCount() != int32(v+1) {
		t.Fatalf("cart %s = version %d, %d lines, %d items; want version %d with %d lines of one item",
			user, c.GetVersion(), len(c.GetItems()), c.GetItemCount(), v, v+1)
	}
	for _, it := range c.GetItems() {
		if it.GetQuantity() != 1 {
			t.Fatalf("cart %s: %s has quantity %d, want 1 (an event applied twice?)", user, it.GetProductId(), it.GetQuantity())
		}
	}
}
