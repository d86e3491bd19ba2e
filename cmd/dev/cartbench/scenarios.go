package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/testing/loadgen"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

const (
	// callTimeout bounds one RPC, so that a wedged service ends a scenario
	// with errors instead of hanging it; it is far above any healthy call.
	callTimeout = 30 * time.Second
	// visibleTimeout bounds one visibility measurement.
	visibleTimeout = 30 * time.Second
	// pollInterval is the pause between GetCart polls while waiting for a
	// write to become visible.
	pollInterval = time.Millisecond
	// usersPerWorker is how many carts each worker of the many-users
	// scenario writes to in turn.
	usersPerWorker = 8
	// clearEvery keeps a cart that takes many AddItems within its limits:
	// products rotate over cart.MaxLines lines, one unit each, so after
	// clearEvery commands a line holds clearEvery/MaxLines units (40, plus
	// whatever concurrent writers add meanwhile), well under MaxQuantity.
	clearEvery = cart.MaxLines * 40
	// principal is the x-principal the benchmark's commands record.
	principal = "cartbench"
)

// bench holds the clients and what the scenarios share.
type bench struct {
	cfg      config
	cmd      cartv1.CartCommandServiceClient
	qry      cartv1.CartQueryServiceClient
	logs     *logCounter // nil for a running stack
	progress io.Writer
	// runID prefixes every user, so that runs against a long-lived stack
	// never share carts.
	runID string
	// known holds every cart written so far and its last version, for
	// the GetCart scenario.
	known map[string]int64
	// target is the stack under test (api phase); its stores are probed
	// for the min_version floor.
	target   *target
	probeErr error
}

var unitPrice = &cartv1.Money{CurrencyCode: "EUR", Units: 1}

func product(n int) string { return fmt.Sprintf("sku-%02d", n%cart.MaxLines) }

func withPrincipal(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-principal", principal)
}

// classify names an error by its gRPC code, prefixed with the maintenance
// call for errors that did not come from the measured call.
func classify(err error) string {
	var m *maintenanceError
	if errors.As(err, &m) {
		return m.call + "/" + status.Code(m.err).String()
	}
	var s *staleError
	if errors.As(err, &s) {
		return "StaleRead"
	}
	return status.Code(err).String()
}

// maintenanceError is a failure of an unmeasured call an op makes to keep
// its cart valid; it counts as the op's failure, named apart.
type maintenanceError struct {
	call string
	err  error
}

func (e *maintenanceError) Error() string { return e.call + ": " + e.err.Error() }
func (e *maintenanceError) Unwrap() error { return e.err }

// staleError is a GetCart that answered an older cart than one the read
// model had already been seen to reflect.
type staleError struct{ user string }

func (e *staleError) Error() string { return "stale read of " + e.user }

// versions records, per user, the highest version a command returned, so
// that the benchmark can wait for the read model to reflect every write.
type versions struct {
	mu sync.Mutex
	m  map[string]int64
}

func newVersions() *versions { return &versions{m: map[string]int64{}} }

func (v *versions) add(user string, version int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if old, ok := v.m[user]; !ok || version > old {
		v.m[user] = version
	}
}

func (v *versions) snapshot() map[string]int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]int64, len(v.m))
	for k, x := range v.m {
		out[k] = x
	}
	return out
}

func (b *bench) addItem(ctx context.Context, user, productID string) (int64, error) {
	ctx, cancel := context.WithTimeout(withPrincipal(ctx), callTimeout)
	defer cancel()
	resp, err := b.cmd.AddItem(ctx, &cartv1.AddItemRequest{
		UserId: user, ProductId: productID, Quantity: 1, UnitPrice: unitPrice, CommandId: uuid.NewString(),
	})
	if err != nil {
		return 0, err
	}
	return resp.GetVersion(), nil
}

func (b *bench) clearCart(ctx context.Context, user string) (int64, error) {
	// A hot cart may conflict beyond command-svc's own retries: try again,
	// since the clear only makes room for the measured calls.
	var err error
	for range 5 {
		cctx, cancel := context.WithTimeout(withPrincipal(ctx), callTimeout)
		var resp *cartv1.ClearCartResponse
		resp, err = b.cmd.ClearCart(cctx, &cartv1.ClearCartRequest{UserId: user, CommandId: uuid.NewString()})
		cancel()
		if err == nil {
			return resp.GetVersion(), nil
		}
		if status.Code(err) != codes.Aborted {
			break
		}
	}
	return 0, &maintenanceError{call: "ClearCart", err: err}
}

func (b *bench) getCart(ctx context.Context, user string, minVersion *int64, timeout time.Duration) (*cartv1.Cart, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := b.qry.GetCart(ctx, &cartv1.GetCartRequest{UserId: user, MinVersion: minVersion})
	if err != nil {
		return nil, err
	}
	return resp.GetCart(), nil
}

// scenario is one measured run: one row of the report, or two for an
// interleaved pair (see rows).
type scenario struct {
	name, description string
	workers           int
	maxOps            int
	duration          time.Duration
	// expected names the error classes that are part of the scenario's
	// nature rather than a fault (Aborted on a hot cart).
	expected map[string]bool
	op       loadgen.Op
	// written collects the versions the scenario's commands returned;
	// nil for scenarios that do not write.
	written *versions
	// rows turns the run's result into rows; nil makes the one row of
	// name and description.
	rows func(loadgen.Result) []Scenario
}

// run runs s, waits for the read model to reflect its writes and returns
// its rows.
func (b *bench) run(ctx context.Context, s scenario) ([]Scenario, error) {
	fmt.Fprintf(b.progress, "cartbench: %s: workers=%d, up to %v or %d ops…\n", s.name, s.workers, s.duration, s.maxOps)
	var retries0, flushes0, flushed0 int64
	if b.logs != nil {
		retries0, flushes0, flushed0 = b.logs.conflictRetries.Load(), b.logs.flushes.Load(), b.logs.flushedEvents.Load()
	}
	res := loadgen.Run(ctx, loadgen.Config{Workers: s.workers, Duration: s.duration, MaxOps: s.maxOps, Classify: classify}, s.op)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows := []Scenario{newScenario(s.name, s.description, s.workers, res, s.expected)}
	if s.rows != nil {
		rows = s.rows(res)
	}
	var catchUp time.Duration
	if s.written != nil {
		written := s.written.snapshot()
		for u, v := range written {
			b.known[u] = v
		}
		var err error
		if catchUp, err = b.catchUp(ctx, written); err != nil {
			return rows, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	for i := range rows {
		rows[i].CatchUpMs = ms(catchUp)
		if b.logs != nil {
			rows[i].ConflictRetries = ptr(b.logs.conflictRetries.Load() - retries0)
			if n := b.logs.flushes.Load() - flushes0; n > 0 {
				rows[i].ProjectorFlushes = ptr(n)
				rows[i].ProjectorEventsPerFlush = float64(b.logs.flushedEvents.Load()-flushed0) / float64(n)
			}
		}
	}
	return rows, nil
}

func ptr[T any](v T) *T { return &v }

// catchUp waits until GetCart shows every user at least at the version
// written, so that the next scenario starts on a quiet stack and the
// report can say how far the read model trailed. It returns the time
// from its start, right after the scenario's last reply.
func (b *bench) catchUp(ctx context.Context, written map[string]int64) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, b.cfg.WaitTimeout)
	defer cancel()
	users := make(chan string)
	errs := make(chan error, b.cfg.Concurrency)
	var wg sync.WaitGroup
	for range b.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range users {
				if err := b.waitVisible(ctx, u, written[u]); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for u := range written {
		select {
		case users <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(users)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("read model catch-up: %w", err)
	}
	if ctx.Err() != nil {
		return 0, fmt.Errorf("read model catch-up: not within %v: %w", b.cfg.WaitTimeout, ctx.Err())
	}
	return time.Since(start), nil
}

// waitVisible asks for user's cart at version v, again as long as
// query-svc answers "not yet" (its own wait is capped), until ctx ends.
func (b *bench) waitVisible(ctx context.Context, user string, v int64) error {
	for {
		_, err := b.getCart(ctx, user, &v, callTimeout)
		if err == nil {
			return nil
		}
		if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			return fmt.Errorf("cart %s at version %d: %w", user, v, err)
		}
	}
}

// rotatingAdds is the op of the single-cart AddItem scenarios: it adds one
// unit of the next product and, every clearEvery commands (counted over
// all workers), first clears the cart, unmeasured, so the cart stays valid
// however long the scenario runs.
func (b *bench) rotatingAdds(user string, written *versions) loadgen.Op {
	var counter atomic.Int64
	return func(ctx context.Context, _, _ int) (time.Duration, error) {
		n := int(counter.Add(1) - 1)
		if n > 0 && n%clearEvery == 0 {
			if _, err := b.clearCart(ctx, user); err != nil {
				return 0, err
			}
		}
		var v int64
		d, err := loadgen.Timed(func() (err error) {
			v, err = b.addItem(ctx, user, product(n))
			return err
		})
		if err == nil {
			written.add(user, v)
		}
		return d, err
	}
}

func (b *bench) manyUsers() scenario {
	written := newVersions()
	return scenario{
		name:        rowMany,
		description: fmt.Sprintf("AddItem, each worker on its own %d carts in turn, a fresh cart after %d lines", usersPerWorker, cart.MaxLines),
		workers:     b.cfg.Concurrency, maxOps: b.cfg.MaxOps, duration: b.cfg.Duration,
		written: written,
		op: func(ctx context.Context, w, seq int) (time.Duration, error) {
			slot, round := seq%usersPerWorker, seq/usersPerWorker
			user := fmt.Sprintf("%s-many-w%d-s%d-g%d", b.runID, w, slot, round/cart.MaxLines)
			var v int64
			d, err := loadgen.Timed(func() (err error) {
				v, err = b.addItem(ctx, user, product(round))
				return err
			})
			if err == nil {
				written.add(user, v)
			}
			return d, err
		},
	}
}

func (b *bench) hotUser() scenario {
	written := newVersions()
	return scenario{
		name:        rowHot,
		description: "AddItem, every worker on the same cart (optimistic concurrency: command-svc reloads and retries)",
		workers:     b.cfg.Concurrency, maxOps: b.cfg.MaxOps, duration: b.cfg.Duration,
		expected: map[string]bool{codes.Aborted.String(): true},
		written:  written,
		op:       b.rotatingAdds(b.runID+"-hot", written),
	}
}

// seedHistory gives user cfg.History events as fast as the API allows one
// cart to be written: sequentially (concurrent writers would only conflict),
// an AddItem and then ChangeItemQuantity toggling 2 and 1, so the cart
// stays one line however long its history.
func (b *bench) seedHistory(user string) scenario {
	written := newVersions()
	return scenario{
		name:        rowSeed,
		description: fmt.Sprintf("seeding %d events on one cart: AddItem, then ChangeItemQuantity 2/1/2/…, sequentially", b.cfg.History),
		workers:     1, maxOps: b.cfg.History, duration: b.cfg.WaitTimeout,
		written: written,
		op: func(ctx context.Context, _, seq int) (time.Duration, error) {
			var v int64
			d, err := loadgen.Timed(func() (err error) {
				if seq == 0 {
					v, err = b.addItem(ctx, user, product(0))
					return err
				}
				cctx, cancel := context.WithTimeout(withPrincipal(ctx), callTimeout)
				defer cancel()
				resp, err := b.cmd.ChangeItemQuantity(cctx, &cartv1.ChangeItemQuantityRequest{
					UserId: user, ProductId: product(0), Quantity: int32(1 + seq%2), CommandId: uuid.NewString(),
				})
				v = resp.GetVersion()
				return err
			})
			if err == nil {
				written.add(user, v)
			}
			return d, err
		},
	}
}

// historyPair is AddItem from one worker alternating between a fresh cart
// and the cart with the long history: the latency of a command without
// contention, which is what a long history could slow. Alternating, rather
// than running one cart after the other, exposes both series to the same
// machine load, so that their ratio means something on a busy box. Each
// row's ops/s is that of a sequential client of its cart alone (ops over
// the time spent in its calls).
func (b *bench) historyPair(historyUser string) scenario {
	written := newVersions()
	fresh, hist := loadgen.NewRecorder(classify), loadgen.NewRecorder(classify)
	freshOp := b.rotatingAdds(b.runID+"-fresh", written)
	histOp := b.rotatingAdds(historyUser, written)
	return scenario{
		name:    rowFresh + " / " + rowHistory,
		workers: 1, maxOps: 2 * b.cfg.MaxOps, duration: 2 * b.cfg.Duration,
		written: written,
		op: func(ctx context.Context, w, seq int) (time.Duration, error) {
			op, rec := freshOp, fresh
			if seq%2 == 1 {
				op, rec = histOp, hist
			}
			d, err := op(ctx, w, seq/2)
			rec.Record(d, err)
			return d, err
		},
		rows: func(loadgen.Result) []Scenario {
			return []Scenario{
				newScenario(rowFresh, "AddItem on a cart with no history, one worker, alternating with the next row", 1, fresh.Result(fresh.Busy()), nil),
				newScenario(rowHistory, fmt.Sprintf("AddItem on the cart seeded with %d events, alternating with the row above", b.cfg.History), 1, hist.Result(hist.Busy()), nil),
			}
		},
	}
}

// getCarts reads the carts written so far (the read model has caught up
// with them), checking that none reads older than what was written.
func (b *bench) getCarts(known map[string]int64) scenario {
	users := make([]string, 0, len(known))
	for u := range known {
		users = append(users, u)
	}
	return scenario{
		name:        rowGetCart,
		description: fmt.Sprintf("GetCart without min_version over the %d carts written above", len(users)),
		workers:     b.cfg.Concurrency, maxOps: b.cfg.MaxOps, duration: b.cfg.Duration,
		op: func(ctx context.Context, w, seq int) (time.Duration, error) {
			u := users[(seq*b.cfg.Concurrency+w)%len(users)]
			var c *cartv1.Cart
			d, err := loadgen.Timed(func() (err error) {
				c, err = b.getCart(ctx, u, nil, callTimeout)
				return err
			})
			if err == nil && c.GetVersion() < known[u] {
				return 0, &staleError{user: u}
			}
			return d, err
		},
	}
}

// visibility measures, per command, the time from AddItem's reply with
// version v until GetCart shows v: by polling without min_version, or by
// one GetCart with min_version that query-svc holds until then.
func (b *bench) visibility(minVersion bool) scenario {
	written := newVersions()
	name, mode := rowPoll, "poll"
	description := fmt.Sprintf("AddItem reply → GetCart (no min_version, every %v) shows its version", pollInterval)
	if minVersion {
		name, mode = rowMinVer, "minv"
		description = "AddItem reply → one GetCart with min_version=version answers"
	}
	return scenario{
		name: name, description: description,
		workers: b.cfg.Concurrency, maxOps: b.cfg.VisibilityOps, duration: b.cfg.Duration,
		written: written,
		op: func(ctx context.Context, w, seq int) (time.Duration, error) {
			user := fmt.Sprintf("%s-vis-%s-w%d", b.runID, mode, w)
			if seq > 0 && seq%clearEvery == 0 {
				if _, err := b.clearCart(ctx, user); err != nil {
					return 0, err
				}
			}
			v, err := b.addItem(ctx, user, product(seq))
			if err != nil {
				return 0, &maintenanceError{call: "AddItem", err: err}
			}
			replied := time.Now()
			written.add(user, v)
			if minVersion {
				_, err := b.getCart(ctx, user, &v, visibleTimeout)
				return time.Since(replied), err
			}
			for {
				c, err := b.getCart(ctx, user, nil, callTimeout)
				if err != nil {
					return 0, err
				}
				if c.GetVersion() >= v {
					return time.Since(replied), nil
				}
				if time.Since(replied) > visibleTimeout {
					return 0, status.Errorf(codes.DeadlineExceeded, "version %d not visible within %v", v, visibleTimeout)
				}
				time.Sleep(pollInterval)
			}
		},
	}
}
