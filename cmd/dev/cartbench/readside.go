package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/querysvc"
	"github.com/acme/cart/internal/readmodel"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// Targets of the read side.
const (
	targetScale    = "replay-rate-scaling"
	targetApply    = "projector-vs-raw-write"
	targetMemory   = "replay-memory"
	targetMinVer   = "min-version-p99"
	eventsPerCart  = 100
	rawFillBatch   = 1000
	replayMaxWait  = "60s"
	replayProducts = 4
)

// ScaleRow is one size of the scaling table: how fast query-svc's
// projector writes carts while the collection holds about that many, and
// how fast the MongoDB driver alone writes cart documents into a
// collection of the same size on the same server.
type ScaleRow struct {
	Carts int `json:"carts"`
	// WindowCarts is the number of carts the rates are measured over: the
	// last tenth before the collection reaches Carts.
	WindowCarts          int     `json:"window_carts"`
	ReplayCartsPerSecond float64 `json:"replay_carts_per_second"`
	ProjectorMsPerDoc    float64 `json:"projector_ms_per_doc"`
	RawWritesPerSecond   float64 `json:"raw_writes_per_second"`
	RawMsPerWrite        float64 `json:"raw_ms_per_write"`
	// RawBulkDocsPerSecond is the driver's rate with unordered bulk writes
	// of RawBulkSize upserts.
	RawBulkDocsPerSecond float64 `json:"raw_bulk_docs_per_second"`
	RawBulkSize          int     `json:"raw_bulk_size"`
	// RawInsertDocsPerSecond is the driver's rate with unordered inserts
	// of RawBulkSize new documents: what the projector does for carts it
	// has never seen, as in a replay.
	RawInsertDocsPerSecond float64 `json:"raw_insert_docs_per_second"`
}

// Replay is the rebuild: a fresh query-svc catching up on a log it has
// never seen.
type Replay struct {
	Events        int     `json:"events"`
	Carts         int     `json:"carts"`
	FillSeconds   float64 `json:"fill_seconds"`
	Seconds       float64 `json:"seconds"`
	EventsPerSec  float64 `json:"events_per_second"`
	EarlyEvents   int     `json:"early_events"`
	EarlyHWMMiB   float64 `json:"early_peak_rss_mib"`
	EndHWMMiB     float64 `json:"end_peak_rss_mib"`
	EarlySeconds  float64 `json:"early_seconds"`
	LateEventsSec float64 `json:"late_events_per_second"`
}

// readSide holds the stores the read-side phase shares: one embedded
// FerretDB set up as the stack sets it up (the _id expression index on
// every collection, checked every second), and the query-svc binary.
type readSide struct {
	cfg      config
	progress io.Writer
	mongo    *embeddedmongo.Server
	bin      string
	dir      string
}

func newReadSide(ctx context.Context, cfg config, progress io.Writer) (_ *readSide, err error) {
	dir, err := os.MkdirTemp("", "cartbench-read-")
	if err != nil {
		return nil, fmt.Errorf("read side: %w", err)
	}
	r := &readSide{cfg: cfg, progress: progress, dir: dir, bin: cfg.QuerySvcBin}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.close())
		}
	}()
	if r.bin == "" {
		r.bin = filepath.Join(dir, "query-svc")
		fmt.Fprintln(progress, "cartbench: building query-svc…")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", r.bin, "github.com/acme/cart/cmd/query-svc").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("build query-svc: %w\n%s", err, out)
		}
	}
	if r.mongo, err = embeddedmongo.Start(ctx, embeddedmongo.Config{
		Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "ferretdb"), IndexInterval: time.Second,
	}); err != nil {
		return nil, fmt.Errorf("read side: FerretDB: %w", err)
	}
	return r, nil
}

func (r *readSide) close() error {
	var err error
	if r.mongo != nil {
		err = r.mongo.Close()
	}
	return errors.Join(err, os.RemoveAll(r.dir))
}

// eventLog is an in-memory stand-in and a client to fill it.
type eventLog struct {
	es    *standin.Server
	store *eventstore.Store
	stop  func() error
}

func startLog(ctx context.Context) (*eventLog, error) {
	es, err := standin.New(standin.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		return nil, fmt.Errorf("stand-in: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- es.Serve(sctx) }()
	store, err := eventstore.Open(ctx, es.ConnectionString(), nil)
	if err != nil {
		cancel()
		return nil, errors.Join(err, es.Close(), <-done)
	}
	return &eventLog{es: es, store: store, stop: func() error {
		err := store.Close()
		cancel()
		return errors.Join(err, es.Close(), <-done)
	}}, nil
}

// fill appends carts streams in order, cart i getting perCart(i) events in
// one append, and returns how long it took. One append per cart is the
// fastest way in through the stand-in's API, and keeps each cart's events
// together in $all, so that "cart i is visible" means "every event before
// it has been applied".
func (l *eventLog) fill(ctx context.Context, user func(int) string, carts int, perCart func(int) int) (time.Duration, error) {
	start := time.Now()
	for i := range carts {
		n := perCart(i)
		evs := make([]cart.Event, n)
		for j := range evs {
			evs[j] = cart.ItemAdded{ProductID: product(j % replayProducts), Quantity: 1, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 1}}
		}
		meta := cart.Metadata{CommandID: "fill-" + user(i), CommandType: "AddItem", Principal: principal, Time: time.Now()}
		if _, err := l.store.AppendEvents(ctx, user(i), -1, meta, evs); err != nil {
			return 0, fmt.Errorf("fill cart %d: %w", i, err)
		}
	}
	return time.Since(start), nil
}

// querySvc is a query-svc subprocess: its own process, so that its memory
// is its own.
type querySvc struct {
	cmd    *exec.Cmd
	conn   *grpc.ClientConn
	qry    cartv1.CartQueryServiceClient
	stderr *tailBuffer
	done   chan error
}

func (r *readSide) startQuerySvc(ctx context.Context, esdbURL, db string) (*querySvc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(r.bin,
		"--listen", addr, "--insecure-no-auth", "--esdb", esdbURL, "--mongo-uri", r.mongo.URI(), "--mongo-db", db,
		"--mongo-compat", "ferretdb", "--max-wait", replayMaxWait, "--log-level", "warn", "--reflection=false")
	tail := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = tail, tail
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start query-svc: %w", err)
	}
	q := &querySvc{cmd: cmd, stderr: tail, done: make(chan error, 1)}
	go func() { q.done <- cmd.Wait() }()
	if q.conn, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return nil, errors.Join(fmt.Errorf("dial query-svc: %w", err), q.stop())
	}
	q.qry = cartv1.NewCartQueryServiceClient(q.conn)
	return q, nil
}

// ready blocks until query-svc answers a GetCart (of a user nobody has).
func (q *querySvc) ready(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-principal", "cartbench-ready")
	for {
		_, err := q.qry.GetCart(ctx, &cartv1.GetCartRequest{UserId: "cartbench-ready"}, grpc.WaitForReady(true))
		if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("query-svc does not answer within %v: %w", within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends query-svc with SIGTERM, as an orchestrator would.
func (q *querySvc) stop() error {
	var errs []error
	if q.conn != nil {
		errs = append(errs, q.conn.Close())
	}
	if err := q.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, err)
	}
	select {
	case err := <-q.done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			errs = append(errs, err)
		}
	case <-time.After(30 * time.Second):
		errs = append(errs, q.cmd.Process.Kill(), errors.New("query-svc did not stop within 30s"))
	}
	return errors.Join(errs...)
}

// waitCart blocks until query-svc shows user's cart at version v or later,
// asking again while it answers "not yet" (its wait is capped), and
// returns when that was.
func (q *querySvc) waitCart(ctx context.Context, user string, v int64, within time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-principal", user)
	for {
		_, err := q.qry.GetCart(ctx, &cartv1.GetCartRequest{UserId: user, MinVersion: &v}, grpc.WaitForReady(true))
		if err == nil {
			return time.Now(), nil
		}
		select {
		case err := <-q.done:
			q.done <- err
			return time.Time{}, fmt.Errorf("query-svc exited (%v); its last output:\n%s", err, q.stderr.String())
		default:
		}
		if ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("cart %s at version %d not visible within %v: %w", user, v, within, err)
		}
		if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
			return time.Time{}, fmt.Errorf("cart %s at version %d: %w", user, v, err)
		}
	}
}

// peakRSSMiB is the process's peak resident set (VmHWM), in MiB.
func peakRSSMiB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseFloat(f[0], 64)
				if err != nil {
					return 0, fmt.Errorf("peak RSS: %w", err)
				}
				return kb / 1024, nil
			}
		}
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc/<pid>/status")
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// scaling replays a log of one-event carts, as many as the largest size,
// into an empty read model through a query-svc subprocess, and times the
// last window before each size (scaleWindow); then it writes cart documents with the
// driver alone into another collection on the same server, and times the
// same windows.
func (r *readSide) scaling(ctx context.Context) ([]ScaleRow, error) {
	sizes := r.cfg.Scale
	largest := sizes[len(sizes)-1]
	user := func(i int) string { return fmt.Sprintf("sc-%07d", i) }
	log, err := startLog(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = log.stop() }()
	fmt.Fprintf(r.progress, "cartbench: readside: filling a log with %d one-event carts…\n", largest)
	if _, err := log.fill(ctx, user, largest, func(int) int { return 1 }); err != nil {
		return nil, err
	}
	fmt.Fprintf(r.progress, "cartbench: readside: query-svc replaying %d carts…\n", largest)
	// The replay must not start before query-svc answers: the first
	// window (a few hundred carts) would pass while its API comes up and
	// both ends would appear at once. So cartbench holds the projector
	// lease while query-svc starts, and lets go once it answers.
	rc, err := readmodel.ConnectWith(ctx, r.mongo.URI(), readmodel.FerretDBCompat())
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close(context.WithoutCancel(ctx)) }()
	gate := rc.Lease("scale", querysvc.ProjectorLease, "cartbench", time.Minute)
	if _, ok, err := gate.Acquire(ctx); err != nil || !ok {
		return nil, fmt.Errorf("hold the projector lease: %v (acquired %v)", err, ok)
	}
	q, err := r.startQuerySvc(ctx, log.es.ConnectionString(), "scale")
	if err != nil {
		return nil, err
	}
	if err := q.ready(ctx, r.cfg.WaitTimeout); err != nil {
		return nil, errors.Join(err, q.stop())
	}
	if err := gate.Release(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("release the projector lease: %w", err), q.stop())
	}
	rows := make([]ScaleRow, len(sizes))
	for i, n := range sizes {
		w := scaleWindow(n)
		from, err := q.waitCart(ctx, user(n-w-1), 0, r.cfg.WaitTimeout)
		if err != nil {
			return nil, errors.Join(err, q.stop())
		}
		to, err := q.waitCart(ctx, user(n-1), 0, r.cfg.WaitTimeout)
		if err != nil {
			return nil, errors.Join(err, q.stop())
		}
		rate := float64(w) / to.Sub(from).Seconds()
		rows[i] = ScaleRow{Carts: n, WindowCarts: w, ReplayCartsPerSecond: rate, ProjectorMsPerDoc: 1000 / rate}
		fmt.Fprintf(r.progress, "cartbench: readside: %d carts: %.0f carts/s over the last %d\n", n, rate, w)
	}
	if err := q.stop(); err != nil {
		return nil, err
	}
	if err := r.rawWrites(ctx, rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// rawDoc is a cart document as the read model stores it (readmodel's
// schema), written by the driver alone.
type rawDoc struct {
	ID        string    `bson:"_id"`
	Items     []rawItem `bson:"items"`
	Version   int64     `bson:"version"`
	UpdatedAt time.Time `bson:"updated_at"`
	Stale     bool      `bson:"stale"`
}

type rawItem struct {
	ProductID string   `bson:"product_id"`
	Quantity  int32    `bson:"quantity"`
	UnitPrice rawMoney `bson:"unit_price"`
}

type rawMoney struct {
	CurrencyCode string `bson:"currency_code"`
	Units        int64  `bson:"units"`
	Nanos        int32  `bson:"nanos"`
}

func newRawDoc(i int) rawDoc {
	return rawDoc{
		ID: fmt.Sprintf("raw-%07d", i), Version: 0, UpdatedAt: time.Now().UTC().Truncate(time.Millisecond),
		Items: []rawItem{{ProductID: product(0), Quantity: 1, UnitPrice: rawMoney{CurrencyCode: "EUR", Units: 1}}},
	}
}

// rawWrites fills a collection with the driver, in bulk up to each
// window, and then writes the window's new documents the three ways a
// single writer can: the first third as unordered inserts, the next as
// unordered bulk writes of upserts by _id, both as many per call as the
// read model sends FerretDB (readmodel.FerretDBCompat), the rest one upsert
// at a time. The fastest is what the server gives a writer that does
// nothing but write.
func (r *readSide) rawWrites(ctx context.Context, rows []ScaleRow) error {
	client, err := mongo.Connect(options.Client().ApplyURI(r.mongo.URI()))
	if err != nil {
		return fmt.Errorf("raw writes: connect: %w", err)
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
	const db = "raw"
	coll := client.Database(db).Collection("carts")
	bulkSize := max(readmodel.FerretDBCompat().MaxBulkWrite, 1)
	have, indexed := 0, false
	ensureIndex := func() error {
		if indexed {
			return nil
		}
		indexed = true
		if err := r.mongo.EnsureIndexes(ctx, db); err != nil {
			return fmt.Errorf("raw writes: index: %w", err)
		}
		return nil
	}
	upsert := options.Replace().SetUpsert(true)
	for i := range rows {
		n, w := rows[i].Carts, rows[i].WindowCarts
		fmt.Fprintf(r.progress, "cartbench: readside: raw driver writes up to %d documents…\n", n)
		for have < n-w {
			batch := make([]any, 0, rawFillBatch)
			for ; have < n-w && len(batch) < rawFillBatch; have++ {
				batch = append(batch, newRawDoc(have))
			}
			if _, err := coll.InsertMany(ctx, batch); err != nil {
				return fmt.Errorf("raw writes: fill: %w", err)
			}
			if err := ensureIndex(); err != nil {
				return err
			}
		}
		third := w / 3
		start := time.Now()
		insDocs := 0
		for have < n-w+third {
			batch := make([]any, 0, bulkSize)
			for ; have < n-w+third && len(batch) < bulkSize; have++ {
				batch = append(batch, newRawDoc(have))
			}
			if _, err := coll.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false)); err != nil {
				return fmt.Errorf("raw writes: bulk insert: %w", err)
			}
			insDocs += len(batch)
			if err := ensureIndex(); err != nil {
				return err
			}
		}
		insEl := time.Since(start)
		half := n - (w-third)/2
		start = time.Now()
		bulkDocs := 0
		for have < half {
			models := make([]mongo.WriteModel, 0, bulkSize)
			for ; have < half && len(models) < bulkSize; have++ {
				d := newRawDoc(have)
				models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: d.ID}}).SetReplacement(d).SetUpsert(true))
			}
			if _, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
				return fmt.Errorf("raw writes: bulk upsert: %w", err)
			}
			bulkDocs += len(models)
			if err := ensureIndex(); err != nil {
				return err
			}
		}
		bulkEl := time.Since(start)
		start = time.Now()
		single := 0
		for ; have < n; have++ {
			d := newRawDoc(have)
			if _, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d, upsert); err != nil {
				return fmt.Errorf("raw writes: upsert: %w", err)
			}
			single++
			if err := ensureIndex(); err != nil {
				return err
			}
		}
		el := time.Since(start)
		if single > 0 {
			rows[i].RawWritesPerSecond = float64(single) / el.Seconds()
			rows[i].RawMsPerWrite = ms(el) / float64(single)
		}
		rows[i].RawBulkSize = bulkSize
		if bulkDocs > 0 {
			rows[i].RawBulkDocsPerSecond = float64(bulkDocs) / bulkEl.Seconds()
		}
		if insDocs > 0 {
			rows[i].RawInsertDocsPerSecond = float64(insDocs) / insEl.Seconds()
		}
	}
	return nil
}

// rawBest is the faster of the driver's two ways of writing at a size.
func (row ScaleRow) rawBest() (float64, string) {
	best, how := row.RawWritesPerSecond, "driver single upserts by _id"
	if row.RawBulkDocsPerSecond > best {
		best, how = row.RawBulkDocsPerSecond, fmt.Sprintf("driver bulk upserts of %d by _id", row.RawBulkSize)
	}
	if row.RawInsertDocsPerSecond > best {
		best, how = row.RawInsertDocsPerSecond, fmt.Sprintf("driver unordered inserts of %d", row.RawBulkSize)
	}
	return best, how
}

// scaleWindow is how many carts before a size its rates are measured
// over: the last tenth, but at least 1,000 carts (or half the size, if
// smaller), so that the projector's batches of 100 events do not make the
// smallest size's rate a matter of one batch.
func scaleWindow(n int) int { return max(n/10, min(n/2, 1000), 1) }

// replay is the rebuild: a log of cfg.ReplayEvents cart events (carts of
// 100), and a fresh query-svc catching up from its start. Its peak RSS is
// read once it has applied the first tenth (at most 10,000 events) and at
// the end.
func (r *readSide) replay(ctx context.Context) (Replay, error) {
	total := r.cfg.ReplayEvents
	carts := (total + eventsPerCart - 1) / eventsPerCart
	per := func(i int) int { return min(eventsPerCart, total-i*eventsPerCart) }
	user := func(i int) string { return fmt.Sprintf("rp-%07d", i) }
	log, err := startLog(ctx)
	if err != nil {
		return Replay{}, err
	}
	defer func() { _ = log.stop() }()
	fmt.Fprintf(r.progress, "cartbench: readside: filling a log with %d events on %d carts…\n", total, carts)
	fill, err := log.fill(ctx, user, carts, per)
	if err != nil {
		return Replay{}, err
	}
	early := min(10000, max(total/10, 1))
	earlyCart := (early+eventsPerCart-1)/eventsPerCart - 1
	rep := Replay{Events: total, Carts: carts, FillSeconds: fill.Seconds(), EarlyEvents: (earlyCart + 1) * eventsPerCart}
	rep.EarlyEvents = min(rep.EarlyEvents, total)
	fmt.Fprintf(r.progress, "cartbench: readside: query-svc replaying %d events…\n", total)
	start := time.Now()
	q, err := r.startQuerySvc(ctx, log.es.ConnectionString(), "replay")
	if err != nil {
		return Replay{}, err
	}
	earlyAt, err := q.waitCart(ctx, user(earlyCart), int64(per(earlyCart)-1), r.cfg.WaitTimeout)
	if err != nil {
		return Replay{}, errors.Join(err, q.stop())
	}
	if rep.EarlyHWMMiB, err = peakRSSMiB(q.cmd.Process.Pid); err != nil {
		return Replay{}, errors.Join(err, q.stop())
	}
	endAt, err := q.waitCart(ctx, user(carts-1), int64(per(carts-1)-1), r.cfg.WaitTimeout)
	if err != nil {
		return Replay{}, errors.Join(err, q.stop())
	}
	if rep.EndHWMMiB, err = peakRSSMiB(q.cmd.Process.Pid); err != nil {
		return Replay{}, errors.Join(err, q.stop())
	}
	rep.EarlySeconds = earlyAt.Sub(start).Seconds()
	rep.Seconds = endAt.Sub(start).Seconds()
	rep.EventsPerSec = float64(total) / rep.Seconds
	if late := endAt.Sub(earlyAt).Seconds(); late > 0 && total > rep.EarlyEvents {
		rep.LateEventsSec = float64(total-rep.EarlyEvents) / late
	}
	return rep, q.stop()
}

// readTargets turns the scaling table and the replay into their targets.
func readTargets(rows []ScaleRow, rep *Replay) []Target {
	var ts []Target
	if len(rows) >= 2 {
		first, last := rows[0], rows[len(rows)-1]
		ts = append(ts, newTarget(targetScale, "carts/s", fmt.Sprintf("replay rate at %d carts", last.Carts), last.ReplayCartsPerSecond,
			fmt.Sprintf("replay rate at %d carts", first.Carts), first.ReplayCartsPerSecond, ">=", 0.67))
	} else {
		ts = append(ts, unmeasured(targetScale, "needs at least two sizes in -scale"))
	}
	if len(rows) >= 1 {
		last := rows[len(rows)-1]
		raw, how := last.rawBest()
		ts = append(ts, newTarget(targetApply, "docs/s", fmt.Sprintf("projector apply rate at %d carts", last.Carts), last.ReplayCartsPerSecond,
			how+", same size, same server", raw, ">=", 0.9))
	}
	if rep != nil {
		ts = append(ts, newTarget(targetMemory, "MiB", fmt.Sprintf("query-svc peak RSS after %d events", rep.Events), rep.EndHWMMiB,
			fmt.Sprintf("its peak RSS after %d events", rep.EarlyEvents), rep.EarlyHWMMiB, "<=", 1.1))
	}
	return ts
}

// tailBuffer keeps the last max bytes written, for an error message.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// runReadSide runs the scaling table and the rebuild replay on one
// embedded FerretDB, and adds their targets.
func runReadSide(ctx context.Context, cfg config, progress io.Writer, rep *Report) (err error) {
	r, err := newReadSide(ctx, cfg, progress)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, r.close()) }()
	rows, err := r.scaling(ctx)
	rep.Scaling = rows
	if err != nil {
		rep.Targets = append(rep.Targets, unmeasured(targetScale, err.Error()))
		return fmt.Errorf("read side scaling: %w", err)
	}
	replay, err := r.replay(ctx)
	if err != nil {
		rep.Targets = append(rep.Targets, readTargets(rows, nil)...)
		rep.Targets = append(rep.Targets, unmeasured(targetMemory, err.Error()))
		return fmt.Errorf("read side replay: %w", err)
	}
	rep.Replay = &replay
	rep.Targets = append(rep.Targets, readTargets(rows, &replay)...)
	return nil
}
