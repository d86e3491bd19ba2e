package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/cart/internal/api/guard"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/commandsvc"
	"github.com/acme/cart/internal/dev/devauth"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/testing/loadgen"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// Rows of the ratios phase.
const (
	rowFloorN      = "noop-floor-n"
	rowFreshN      = "additem-fresh-n"
	rowFloor1      = "noop-floor-1"
	rowFresh1      = "additem-fresh-1"
	rowHot1        = "additem-hot-1"
	rowHotN        = "additem-hot-n"
	rowDurFloorN   = "durable-noop-floor-n"
	rowDurFreshN   = "durable-additem-fresh-n"
	targetFresh    = "fresh-carts-rate"
	targetP50      = "one-caller-p50"
	targetDurable  = "durable-fresh-carts-rate"
	targetHotRate  = "hot-cart-rate"
	targetHotAbort = "hot-cart-aborted"
)

// flatCatalog prices every product at the benchmark's unit price, so that
// command-svc's price lookup costs what an in-memory catalog costs and no
// command fails PRICE_CHANGED.
type flatCatalog struct{}

func (flatCatalog) Prices(_ context.Context, ids []string) (map[string]cart.Money, error) {
	m := make(map[string]cart.Money, len(ids))
	for _, id := range ids {
		m[id] = cart.Money{CurrencyCode: unitPrice.GetCurrencyCode(), Units: unitPrice.GetUnits()}
	}
	return m, nil
}

// commandServer is command-svc alone on a stand-in, the way the issue
// measured it: no projector shares the CPUs, so the figures are
// command-svc's and the store's, and the floor is the same server's.
type commandServer struct {
	conn  *grpc.ClientConn
	close func() error
}

// startCommandServer starts a stand-in (in memory, or fsynced to a log
// under dir) and command-svc on it with real token checks, and a client
// set up like the api phase's.
func startCommandServer(ctx context.Context, cfg config, durable bool) (_ *commandServer, err error) {
	dir, err := os.MkdirTemp("", "cartbench-cmd-")
	if err != nil {
		return nil, fmt.Errorf("command server: %w", err)
	}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(append(errs, os.RemoveAll(dir))...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, closeAll())
		}
	}()
	scfg := standin.Config{Listen: "127.0.0.1:0"}
	if durable {
		scfg.DataDir = filepath.Join(dir, "esdb")
	}
	es, err := standin.New(scfg)
	if err != nil {
		return nil, fmt.Errorf("command server: stand-in: %w", err)
	}
	storeCtx, stopStore := context.WithCancel(context.WithoutCancel(ctx))
	storeDone := make(chan error, 1)
	go func() { storeDone <- es.Serve(storeCtx) }()
	closers = append(closers, func() error {
		stopStore()
		return errors.Join(es.Close(), <-storeDone)
	})

	minter, err := devauth.Ensure(filepath.Join(dir, "auth"))
	if err != nil {
		return nil, fmt.Errorf("command server: dev key: %w", err)
	}
	vc := minter.VerifierConfig()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("command server: %w", err)
	}
	svcCtx, stopSvc := context.WithCancel(context.WithoutCancel(ctx))
	svcDone := make(chan error, 1)
	go func() {
		svcDone <- commandsvc.Run(svcCtx, commandsvc.Config{
			ServerConfig: rpc.ServerConfig{Listener: lis, Security: rpc.SecurityConfig{
				AuthJWKS: vc.JWKS, AuthIssuer: vc.Issuer, AuthAudience: vc.Audience,
			}},
			ESDBURL:       es.ConnectionString(),
			Catalog:       flatCatalog{},
			RateLimit:     guard.RateLimit{},
			SnapshotEvery: cfg.SnapshotEvery,
		}, slog.New(slog.DiscardHandler))
	}()
	closers = append(closers, func() error {
		stopSvc()
		if err := <-svcDone; err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("command-svc: %w", err)
		}
		return nil
	})
	token, err := minter.Mint("cartbench", []string{auth.ScopeAny}, 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("command server: token: %w", err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(token)))
	if err != nil {
		return nil, fmt.Errorf("command server: dial: %w", err)
	}
	closers = append(closers, conn.Close)
	if err := waitServing(ctx, conn, time.Minute); err != nil {
		return nil, fmt.Errorf("command server: %w", err)
	}
	return &commandServer{conn: conn, close: closeAll}, nil
}

// waitServing polls health until SERVING: command-svc starts NOT_SERVING
// and turns SERVING once its store answers.
func waitServing(ctx context.Context, conn *grpc.ClientConn, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	h := healthpb.NewHealthClient(conn)
	for {
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not SERVING within %v (last: %v, %v)", within, resp.GetStatus(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// floorScenario is the no-op floor: a unary health Check to the same
// server over the same connection, from the same number of callers, so
// that the figure beside it differs only by what a command does.
func floorScenario(name string, conn *grpc.ClientConn, workers int, cfg config) scenario {
	h := healthpb.NewHealthClient(conn)
	return scenario{
		name:        name,
		description: fmt.Sprintf("no-op floor: gRPC health Check on the same server and connection, %s", callers(workers)),
		workers:     workers, maxOps: cfg.MaxOps, duration: cfg.Duration,
		op: func(ctx context.Context, _, _ int) (time.Duration, error) {
			return loadgen.Timed(func() error {
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				defer cancel()
				_, err := h.Check(cctx, &healthpb.HealthCheckRequest{})
				return err
			})
		},
	}
}

// freshCarts is AddItem, each call on a cart nobody wrote before.
func (b *bench) freshCarts(name string, workers int) scenario {
	return scenario{
		name:        name,
		description: fmt.Sprintf("AddItem, every call on a fresh cart, %s", callers(workers)),
		workers:     workers, maxOps: b.cfg.MaxOps, duration: b.cfg.Duration,
		op: func(ctx context.Context, w, seq int) (time.Duration, error) {
			user := fmt.Sprintf("%s-fresh-w%d-%d", b.runID, w, seq)
			return loadgen.Timed(func() error {
				_, err := b.addItem(ctx, user, product(seq))
				return err
			})
		},
	}
}

// hotCart is AddItem from workers callers on one cart.
func (b *bench) hotCart(name string, workers int) scenario {
	return scenario{
		name:        name,
		description: fmt.Sprintf("AddItem, %s on one cart", callers(workers)),
		workers:     workers, maxOps: b.cfg.MaxOps, duration: b.cfg.Duration,
		expected: map[string]bool{codes.Aborted.String(): true},
		op:       b.rotatingAdds(fmt.Sprintf("%s-hot%d-%s", b.runID, workers, uuid.NewString()[:4]), newVersions()),
	}
}

// runRatios measures command-svc's figures, each right after its floor,
// on an in-memory and then a durable stand-in, and returns the rows and
// the targets they decide.
func runRatios(ctx context.Context, cfg config, progress io.Writer, runID string) ([]Scenario, []Target, error) {
	var rows []Scenario
	n := cfg.Callers
	rowsByName := map[string]Scenario{}
	measure := func(srv *commandServer, steps []func(*bench) scenario) error {
		b := &bench{cfg: cfg, cmd: cartv1.NewCartCommandServiceClient(srv.conn), progress: progress, runID: runID, known: map[string]int64{}}
		for _, step := range steps {
			r, err := b.run(ctx, step(b))
			rows = append(rows, r...)
			for _, s := range r {
				rowsByName[s.Name] = s
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	mem, err := startCommandServer(ctx, cfg, false)
	if err != nil {
		return nil, nil, err
	}
	err = measure(mem, []func(*bench) scenario{
		func(*bench) scenario { return floorScenario(rowFloorN, mem.conn, n, cfg) },
		func(b *bench) scenario { return b.freshCarts(rowFreshN, n) },
		func(*bench) scenario { return floorScenario(rowFloor1, mem.conn, 1, cfg) },
		func(b *bench) scenario { return b.freshCarts(rowFresh1, 1) },
		func(b *bench) scenario { return b.hotCart(rowHot1, 1) },
		func(b *bench) scenario { return b.hotCart(rowHotN, n) },
	})
	if err = errors.Join(err, mem.close()); err != nil {
		return rows, nil, err
	}
	dur, err := startCommandServer(ctx, cfg, true)
	if err != nil {
		return rows, nil, err
	}
	err = measure(dur, []func(*bench) scenario{
		func(*bench) scenario { return floorScenario(rowDurFloorN, dur.conn, n, cfg) },
		func(b *bench) scenario { return b.freshCarts(rowDurFreshN, n) },
	})
	if err = errors.Join(err, dur.close()); err != nil {
		return rows, nil, err
	}
	return rows, ratioTargets(rowsByName, n), nil
}

// ratioTargets turns the rows into the write side's targets.
func ratioTargets(rows map[string]Scenario, n int) []Target {
	r := func(name string) Scenario { return rows[name] }
	hotN := r(rowHotN)
	aborted := float64(hotN.Errors[codes.Aborted.String()])
	return []Target{
		newTarget(targetFresh, "ops/s", fmt.Sprintf("AddItem on fresh carts, %d callers, in-memory stand-in", n), r(rowFreshN).OpsPerSecond,
			fmt.Sprintf("health Check, %d callers", n), r(rowFloorN).OpsPerSecond, ">=", 0.20),
		newTarget(targetP50, "ms", "AddItem p50, 1 caller, in-memory stand-in", r(rowFresh1).P50Ms,
			"health Check p50, 1 caller", r(rowFloor1).P50Ms, "<=", 4),
		newTarget(targetDurable, "ops/s", fmt.Sprintf("AddItem on fresh carts, %d callers, durable stand-in (fsync)", n), r(rowDurFreshN).OpsPerSecond,
			fmt.Sprintf("health Check, %d callers, same server", n), r(rowDurFloorN).OpsPerSecond, ">=", 0.10),
		newTarget(targetHotRate, "ops/s", fmt.Sprintf("AddItem on one cart, %d callers", n), hotN.OpsPerSecond,
			"AddItem on one cart, 1 caller", r(rowHot1).OpsPerSecond, ">=", 0.5),
		newTarget(targetHotAbort, "count", fmt.Sprintf("ABORTED on one cart, %d callers", n), aborted,
			"commands attempted", float64(hotN.Ops)+float64(sumErrors(hotN.Errors)), "<=", 0),
	}
}

func sumErrors(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func callers(n int) string {
	if n == 1 {
		return "1 caller"
	}
	return fmt.Sprintf("%d callers", n)
}
