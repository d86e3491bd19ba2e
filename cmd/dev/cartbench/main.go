// Command cartbench measures the cart product through its gRPC API, on
// loopback only, in three phases (--phases):
//
//   - api: the whole stack (internal/dev/stack): AddItem throughput and
//     latency on many users and on one hot user; AddItem on a cart with a long
//     history (10,000 events by default, seeded first through the API),
//     against a fresh cart; GetCart latency; the time from a command's reply
//     until GetCart shows it, by polling and by GetCart's min_version, beside
//     a probe of what that cannot beat (one subscription delivery plus one
//     document write, measured meanwhile);
//   - ratios: command-svc alone on the EventStoreDB stand-in (in memory, then
//     durable), each figure right after the no-op floor of the same server (a
//     gRPC health Check, same callers, same client): fresh carts with
//     --callers callers, one caller's p50, one hot cart;
//   - readside: a query-svc subprocess replaying a log of one-event carts into
//     the embedded FerretDB, timed at each --scale size beside the MongoDB
//     driver's own write rate on the same server, and the rebuild of a log of
//     --replay-events events with query-svc's peak RSS.
//
// Every figure that issue 10 sets a target for is printed beside its floor
// with the ratio, the target and PASS or MISS, all computed from this run.
// By default it starts everything in-process on free ports with temporary
// data directories; --command-addr and --query-addr target a running stack
// instead (make run; api phase only). It prints a table, or JSON with --json,
// and exits 1 when an operation failed unexpectedly.
//
//	go run ./cmd/dev/cartbench
//	go run ./cmd/dev/cartbench --duration 10s --concurrency 16 --json
//	go run ./cmd/dev/cartbench --phases readside --scale 1000,10000 --replay-events 100000
//	go run ./cmd/dev/cartbench --phases api --command-addr 127.0.0.1:50051 --query-addr 127.0.0.1:50052
//	go run ./cmd/dev/cartbench --phases ratios --cpuprofile cpu.prof   # then go tool pprof -top cpu.prof
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/cart/internal/cli"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

func main() {
	cli.Main("cartbench", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stdout, os.Stderr) })
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	rep := Report{
		Machine: machine(),
		Settings: Settings{
			Duration: cfg.Duration.String(), Concurrency: cfg.Concurrency, History: cfg.History,
			MaxOps: cfg.MaxOps, VisibilityOps: cfg.VisibilityOps,
			Phases:  slices.DeleteFunc(slices.Clone(phaseNames), func(p string) bool { return !cfg.Phases[p] }),
			Callers: cfg.Callers, Scale: cfg.Scale, ReplayEvents: cfg.ReplayEvents,
		},
	}
	runID := "cb-" + uuid.NewString()[:8]
	if cfg.CPUProfile != "" {
		// The in-process services and stores are in the profile too: it
		// shows where a command's time goes on both sides of the wire.
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			err = errors.Join(err, f.Close())
		}()
	}
	var runErr error
	if cfg.Phases["api"] {
		runErr = runAPI(ctx, cfg, stderr, runID, &rep)
	}
	if runErr == nil && cfg.Phases["ratios"] {
		fmt.Fprintln(stderr, "cartbench: ratios: command-svc alone beside the no-op gRPC floor…")
		rows, ts, err := runRatios(ctx, cfg, stderr, runID)
		rep.Scenarios = append(rep.Scenarios, rows...)
		rep.Targets = append(rep.Targets, ts...)
		runErr = err
	}
	if runErr == nil && cfg.Phases["readside"] {
		runErr = runReadSide(ctx, cfg, stderr, &rep)
	}
	rep.Machine.LoadAvgEnd = loadAvg()
	if cfg.JSON {
		err = writeJSON(stdout, rep)
	} else {
		err = writeTable(stdout, rep)
	}
	if runErr != nil {
		return errors.Join(runErr, err)
	}
	if err != nil {
		return err
	}
	var bad []string
	for _, s := range rep.Scenarios {
		if s.UnexpectedErrors > 0 {
			bad = append(bad, fmt.Sprintf("%s: %d", s.Name, s.UnexpectedErrors))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("unexpected errors: %v", bad)
	}
	return nil
}

// runAPI runs the scenarios through the whole stack's gRPC API, and the
// min_version target beside the floor its probe measures meanwhile.
func runAPI(ctx context.Context, cfg config, stderr io.Writer, runID string, rep *Report) (err error) {
	if !cfg.external() {
		fmt.Fprintln(stderr, "cartbench: starting the stack in-process…")
	}
	t, err := startTarget(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, t.close()) }()
	rep.Stack = t.info

	cmdConn, err := grpc.NewClient(t.commandAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(t.token)))
	if err != nil {
		return fmt.Errorf("dial command-svc: %w", err)
	}
	defer cmdConn.Close()
	qryConn, err := grpc.NewClient(t.queryAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(t.token)))
	if err != nil {
		return fmt.Errorf("dial query-svc: %w", err)
	}
	defer qryConn.Close()
	if cfg.external() {
		if err := checkServing(ctx, cmdConn, "command-svc"); err != nil {
			return err
		}
		if err := checkServing(ctx, qryConn, "query-svc"); err != nil {
			return err
		}
	}

	b := &bench{
		cfg:      cfg,
		cmd:      cartv1.NewCartCommandServiceClient(cmdConn),
		qry:      cartv1.NewCartQueryServiceClient(qryConn),
		logs:     t.logs,
		progress: stderr,
		runID:    runID,
		known:    map[string]int64{},
		target:   t,
	}
	runErr := b.runAll(ctx, rep)
	rep.Notes = b.notes(*rep)
	rep.Targets = append(rep.Targets, b.minVersionTarget(*rep))
	return runErr
}

// checkServing fails fast when a running stack does not answer, rather
// than reporting a table of Unavailable.
func checkServing(ctx context.Context, conn *grpc.ClientConn, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("%s at %s: health check: %w", name, conn.Target(), err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("%s at %s is %s", name, conn.Target(), resp.GetStatus())
	}
	return nil
}

// Names of the rows the notes compare.
const (
	rowMany    = "additem-many-users"
	rowHot     = "additem-hot-user"
	rowSeed    = "seed-history"
	rowFresh   = "additem-fresh-cart-1w"
	rowHistory = "additem-history-cart-1w"
	rowGetCart = "getcart"
	rowPoll    = "visibility-poll"
	rowMinVer  = "visibility-min-version"
)

// runAll runs the scenarios in order, appending each row as it completes,
// so that a failure still leaves the rows measured so far to print.
func (b *bench) runAll(ctx context.Context, rep *Report) error {
	historyUser := b.runID + "-history"
	steps := []func() scenario{
		b.manyUsers,
		b.hotUser,
		func() scenario { return b.seedHistory(historyUser) },
		func() scenario { return b.historyPair(historyUser) },
		func() scenario {
			known := make(map[string]int64, len(b.known))
			for u, v := range b.known {
				known[u] = v
			}
			return b.getCarts(known)
		},
		func() scenario { return b.visibility(false) },
		func() scenario { return b.visibility(true) },
	}
	for _, step := range steps {
		sc := step()
		var probe *floorProbe
		if sc.name == rowMinVer && b.target != nil && b.target.esdbURL != "" {
			var err error
			if probe, err = startFloorProbe(ctx, b.target.esdbURL, b.target.mongoURI, b.target.mongoDB, b.runID); err != nil {
				b.probeErr = err
			}
		}
		rows, err := b.run(ctx, sc)
		if probe != nil {
			f, perr := probe.stop()
			if perr != nil {
				b.probeErr = perr
			} else {
				rep.VisibilityFloor = &f
			}
		}
		rep.Scenarios = append(rep.Scenarios, rows...)
		if err != nil {
			return err
		}
	}
	return nil
}

// minVersionTarget compares GetCart(min_version)'s p99 after a command's
// reply, under the many-users load of its scenario, with what the probe
// measured meanwhile: one subscription delivery plus one document write.
func (b *bench) minVersionTarget(rep Report) Target {
	mv, ok := find(rep, rowMinVer)
	switch {
	case !ok:
		return unmeasured(targetMinVer, "the visibility-min-version scenario did not run")
	case rep.VisibilityFloor == nil && b.probeErr != nil:
		return unmeasured(targetMinVer, b.probeErr.Error())
	case rep.VisibilityFloor == nil:
		return unmeasured(targetMinVer, "no probe: the stores of a running stack are unknown")
	}
	f := rep.VisibilityFloor
	t := newTarget(targetMinVer, "ms", fmt.Sprintf("GetCart(min_version) p99 after AddItem's reply, %d callers", mv.Workers), mv.P99Ms,
		fmt.Sprintf("p99 subscription delivery %s + p99 document write %s", fmtMs(f.DeliveryP99), fmtMs(f.WriteP99)), f.DeliveryP99+f.WriteP99, "<=", 2)
	t.Note = fmt.Sprintf("%d probe samples", f.Samples)
	return t
}

func find(rep Report, name string) (Scenario, bool) {
	for _, s := range rep.Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("×%.2f", a/b)
}

// notes turns the rows into the comparisons the benchmark exists for, and
// the caveats without which the numbers mislead.
func (b *bench) notes(rep Report) []string {
	var n []string
	if s, ok := find(rep, rowSeed); ok {
		line := fmt.Sprintf("seeding: %d events on one cart in %.1fs (%.0f commands/s, one at a time: concurrent writers to one cart only conflict)",
			s.Ops, s.ElapsedSeconds, s.OpsPerSecond)
		if s.Ops < b.cfg.History {
			line += fmt.Sprintf("; stopped short of %d (bounded by --wait-timeout %v or by errors)", b.cfg.History, b.cfg.WaitTimeout)
		}
		n = append(n, line)
	}
	hist, okH := find(rep, rowHistory)
	fresh, okF := find(rep, rowFresh)
	many, okM := find(rep, rowMany)
	if okH && okF {
		line := fmt.Sprintf("long history: AddItem on a cart with %d past events vs a fresh cart (one worker alternating between them): p50 %s vs %s (%s), p99 %s vs %s (%s), %.0f vs %.0f sequential commands/s",
			b.cfg.History, fmtMs(hist.P50Ms), fmtMs(fresh.P50Ms), ratio(hist.P50Ms, fresh.P50Ms),
			fmtMs(hist.P99Ms), fmtMs(fresh.P99Ms), ratio(hist.P99Ms, fresh.P99Ms), hist.OpsPerSecond, fresh.OpsPerSecond)
		if okM {
			line += fmt.Sprintf("; many users with %d workers: p50 %s, p99 %s, %.0f commands/s", many.Workers, fmtMs(many.P50Ms), fmtMs(many.P99Ms), many.OpsPerSecond)
		}
		if rep.Stack.Snapshots == "off" {
			line += ". Snapshots are off: every command replays the whole history"
		} else {
			line += ". command-svc loads a cart from its latest snapshot plus the events after it (snapshots: " + orUnknown(rep.Stack.Snapshots) + "), so the cost should stay flat as the history grows"
		}
		n = append(n, line)
	}
	if hot, ok := find(rep, rowHot); ok {
		line := fmt.Sprintf("hot cart: %d workers on one cart; Aborted counts commands that still conflicted after command-svc's own retries (expected under contention, not a fault)", hot.Workers)
		if hot.ConflictRetries != nil && hot.Ops > 0 {
			line += fmt.Sprintf("; command-svc reloaded and decided again %d times (%.2f per successful command, counted from its debug log)",
				*hot.ConflictRetries, float64(*hot.ConflictRetries)/float64(hot.Ops))
		}
		n = append(n, line)
	}
	n = append(n, "catch-up: time from a write scenario's last reply until GetCart(min_version) showed every cart it wrote; the next scenario starts only then, on a quiet stack")
	if rep.Stack.InProcess {
		n = append(n, "read model: FerretDB on SQLite does only ~250 upserts/s, so catch-up and visibility measure that store, not MongoDB; the projector batches events per cart while behind, so a burst costs fewer writes than events")
		var parts []string
		for _, s := range rep.Scenarios {
			if s.ProjectorFlushes != nil {
				parts = append(parts, fmt.Sprintf("%s %d (%.1f events each)", s.Name, *s.ProjectorFlushes, s.ProjectorEventsPerFlush))
			}
		}
		if len(parts) > 0 {
			n = append(n, "projector flushes (from its debug log): "+strings.Join(parts, ", "))
		}
	} else {
		n = append(n, "read model: unknown stores (running stack); the local stack's FerretDB on SQLite does only ~250 upserts/s, so visibility numbers there measure that store")
	}
	if g, ok := find(rep, rowGetCart); ok {
		n = append(n, fmt.Sprintf("visibility-poll resolution: the %v pause plus one GetCart round trip (getcart p50 %s); its polls also load the store the projector writes to", pollInterval, fmtMs(g.P50Ms)))
	}
	n = append(n, "visibility-min-version: query-svc holds the call until its projector reports the version (capped at its own 10s limit, then Unavailable)")
	if b.logs != nil {
		if w, e := b.logs.warnings.Load(), b.logs.errors.Load(); w+e > 0 {
			n = append(n, fmt.Sprintf("the in-process stack logged %d warnings and %d errors (see them with --log-level warn)", w, e))
		}
	}
	n = append(n, "errors: only Aborted on the hot cart is expected; any other error is a fault and makes cartbench exit 1")
	return n
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// bearer sends the benchmark's token with every call (none when empty, for
// a running stack started with --insecure-no-auth).
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
