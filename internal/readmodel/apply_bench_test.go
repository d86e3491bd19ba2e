package readmodel

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

// applyBenchBatch is the projector's batch size in BenchmarkApplyVsDriver,
// and the number of events the driver path folds into one round of writes.
const applyBenchBatch = projection.DefaultBatchSize

// BenchmarkApplyVsDriver compares the projector's apply rate with the raw
// driver's write rate on the same embedded FerretDB (FerretDBCompat, with
// embeddedmongo's index), for the same documents: a collection of docs
// carts, of which a hot set of 500 receives events in turn, so that a
// batch of 100 events touches 100 carts, each again five batches later,
// as under live traffic of many users. path=driver folds each batch in
// memory and replaces its 100 documents by _id in bulk writes of
// MaxBulkWrite, with no read and no checkpoint: the floor of what any
// projector can write. path=projector runs a projection.Projector on an
// in-memory subscription of the same events, writing through the Store
// fenced by a lease (Store.Fenced), as the lease's holder does. One op is 1,000 events (ten
// batches); both report events/s. The ratio is the issue's "apply rate /
// raw driver write rate":
//
//	go test -run '^$' -bench ApplyVsDriver -count 5 ./internal/readmodel/ > apply.txt
//	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da -col /path apply.txt
//
// APPLY_BENCH_DOCS=1000,10000,100000 chooses the collection sizes (default
// 1000,10000).
func BenchmarkApplyVsDriver(b *testing.B) {
	const hot, perOp = 500, 1000
	sizes := []int{1000, 10000}
	if v := os.Getenv("APPLY_BENCH_DOCS"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			var n int
			if _, err := fmt.Sscan(f, &n); err != nil || n < hot {
				b.Fatalf("APPLY_BENCH_DOCS: %q is not a number of at least %d", f, hot)
			}
			sizes = append(sizes, n)
		}
	}
	for _, docs := range sizes {
		for _, path := range []string{"driver", "projector"} {
			b.Run(fmt.Sprintf("docs=%d/path=%s", docs, path), func(b *testing.B) {
				w := newApplyWorkload(b, docs, hot)
				run := w.driver
				if path == "projector" {
					run = w.projector(b)
				}
				for b.Loop() {
					run(b, w.next(b, perOp))
				}
				b.ReportMetric(float64(perOp*b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// applyWorkload is a seeded carts collection and the events that move its
// hot carts on.
type applyWorkload struct {
	srv      *embeddedmongo.Server
	client   *Client
	store    *Store
	hotIDs   []string
	carts    map[string]projection.CartDoc // the hot carts after the events made so far
	disk     map[string]projection.CartDoc // the hot carts as the driver path last wrote them
	turn     int
	pos      uint64
	metadata []byte
}

func newApplyWorkload(b *testing.B, docs, hot int) *applyWorkload {
	b.Helper()
	srv := embeddedmongo.StartForTest(b)
	c, err := ConnectWith(context.Background(), srv.URI(), FerretDBCompat())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(context.Background()) })
	w := &applyWorkload{srv: srv, client: c, store: c.Store("cart", Collections{}), carts: map[string]projection.CartDoc{}, disk: map[string]projection.CartDoc{}, pos: 1}
	seed := make([]any, 0, 1000)
	flush := func() {
		if len(seed) > 0 {
			if _, err := w.store.carts.InsertMany(b.Context(), seed); err != nil {
				b.Fatal(err)
			}
			seed = seed[:0]
		}
	}
	for u := range docs {
		d := projection.CartDoc{UserID: fmt.Sprintf("user-%06d", u), Version: 0, UpdatedAt: time.Unix(1700000000, 0).UTC()}
		d.Cart = d.Cart.Apply(applyEvent(0))
		if u%(docs/hot) == 0 && len(w.hotIDs) < hot {
			w.hotIDs = append(w.hotIDs, d.UserID)
			w.carts[d.UserID] = d
			w.disk[d.UserID] = d
		}
		seed = append(seed, toDoc(d))
		if len(seed) == cap(seed) {
			flush()
		}
	}
	flush()
	if err := srv.EnsureIndexes(b.Context(), "cart"); err != nil {
		b.Fatal(err)
	}
	w.metadata, err = cart.MarshalMetadata(cart.Metadata{CommandID: "bench", CommandType: "Bench", Time: time.Unix(1700000000, 0).UTC()})
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// applyEvent is the event of revision rev: one of four products, so that a
// cart keeps four lines whatever its length.
func applyEvent(rev int64) cart.ItemAdded {
	return cart.ItemAdded{ProductID: fmt.Sprintf("sku-%d", rev%4), Quantity: 1, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 3}}
}

// next makes the next n events, the hot carts in turn, and advances the
// expected state.
func (w *applyWorkload) next(b *testing.B, n int) []eventlog.Event {
	b.Helper()
	evs := make([]eventlog.Event, n)
	for i := range evs {
		id := w.hotIDs[w.turn%len(w.hotIDs)]
		w.turn++
		d := w.carts[id]
		d.Version++
		e := applyEvent(d.Version)
		d.Cart = d.Cart.Apply(e)
		w.pos++
		d.UpdatedAt = time.Unix(1700000000+int64(w.pos), 0).UTC()
		w.carts[id] = d
		data, err := cart.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		evs[i] = eventlog.Event{
			StreamID: "cart-" + id, UserID: id, Revision: d.Version,
			Position: eventlog.Position{Commit: w.pos, Prepare: w.pos},
			EventID:  fmt.Sprintf("ev-%s-%d", id, d.Version), Type: e.Type(), Data: data, Metadata: w.metadata,
			Created: d.UpdatedAt,
		}
	}
	return evs
}

// driver writes what the events make, a batch at a time, straight through
// the driver: replaces by _id in bulk writes of MaxBulkWrite, unordered.
func (w *applyWorkload) driver(b *testing.B, evs []eventlog.Event) {
	b.Helper()
	state := map[string]projection.CartDoc{}
	for len(evs) > 0 {
		n := min(len(evs), applyBenchBatch)
		var order []string
		for _, ev := range evs[:n] {
			d, ok := state[ev.UserID]
			if !ok {
				d = w.disk[ev.UserID]
				order = append(order, ev.UserID)
			}
			e, err := cart.Unmarshal(ev.Type, ev.Data)
			if err != nil {
				b.Fatal(err)
			}
			d.Cart, d.Version, d.UpdatedAt = d.Cart.Apply(e), ev.Revision, ev.Created
			state[ev.UserID] = d
		}
		models := make([]mongo.WriteModel, 0, len(order))
		for _, id := range order {
			w.disk[id] = state[id]
			models = append(models, mongo.NewReplaceOneModel().
				SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(toDoc(state[id])))
		}
		for len(models) > 0 {
			m := min(len(models), FerretDBCompat().MaxBulkWrite)
			res, err := w.store.carts.BulkWrite(b.Context(), models[:m], options.BulkWrite().SetOrdered(false))
			if err != nil || res.MatchedCount != int64(m) {
				b.Fatalf("bulk write: %v (matched %v of %d)", err, res, m)
			}
			models = models[m:]
		}
		clear(state)
		evs = evs[n:]
	}
}

// projector starts a projector on an in-memory subscription and returns a
// function that feeds it events and waits until it has stored them all.
func (w *applyWorkload) projector(b *testing.B) func(*testing.B, []eventlog.Event) {
	b.Helper()
	// Fenced, as the projector holding the read model's lease writes.
	l := w.client.Lease("cart", "projector", "bench", time.Hour)
	if _, ok, err := l.Acquire(b.Context()); err != nil || !ok {
		b.Fatalf("Acquire = %v, %v", ok, err)
	}
	src := &chanSource{msgs: make(chan eventlog.Message, 4*applyBenchBatch)}
	p, err := projection.New(projection.Config{Source: src, Store: w.store.Fenced(l), BatchSize: applyBenchBatch})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("projector: %v", err)
		}
		if pr := p.Progress(); pr.Reconnects > 0 || pr.EventsParked > 0 {
			b.Errorf("projector reconnected %d times (%s), parked %d events", pr.Reconnects, pr.LastError, pr.EventsParked)
		}
	})
	var sent int64
	return func(b *testing.B, evs []eventlog.Event) {
		for i := range evs {
			src.msgs <- eventlog.Message{Event: &evs[i]}
		}
		// The last partial batch waits for FlushDelay; a checkpoint
		// message flushes it at once, as the server's would.
		last := evs[len(evs)-1].Position
		src.msgs <- eventlog.Message{Checkpoint: &last}
		sent += int64(len(evs))
		if err := p.WaitUntil(b.Context(), func(pr projection.Progress) bool { return pr.EventsProcessed >= sent }); err != nil {
			b.Fatal(err)
		}
	}
}

// chanSource is a Source whose one subscription delivers what is sent on msgs.
type chanSource struct{ msgs chan eventlog.Message }

func (s *chanSource) Subscribe(context.Context, *eventlog.Position) (eventlog.Subscription, error) {
	return chanSub{s.msgs}, nil
}

type chanSub struct{ msgs chan eventlog.Message }

func (s chanSub) Next(ctx context.Context) (eventlog.Message, error) {
	select {
	case m := <-s.msgs:
		return m, nil
	case <-ctx.Done():
		return eventlog.Message{}, ctx.Err()
	}
}

func (chanSub) Close() error { return nil }
