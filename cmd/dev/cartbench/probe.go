package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/testing/loadgen"
)

const (
	// probeEvery spaces the floor probe's samples: often enough for a
	// p99 over a scenario, rarely enough not to load the stores it measures.
	probeEvery = 50 * time.Millisecond
	// probeCollection is where the probe's document writes go, in the
	// stack's read model database, apart from the carts.
	probeCollection = "cartbench_probe"
)

// visibilityFloor is what a GetCart with min_version cannot beat: the
// event must reach a subscriber, and one document must be written.
type visibilityFloor struct {
	Samples     int     `json:"samples"`
	DeliveryP99 float64 `json:"delivery_p99_ms"`
	DeliveryP50 float64 `json:"delivery_p50_ms"`
	WriteP99    float64 `json:"write_p99_ms"`
	WriteP50    float64 `json:"write_p50_ms"`
}

// floorProbe measures, while a scenario loads the stack, the delivery of
// one event to a subscription of the stack's event store (from the
// append's acknowledgement to its arrival) and one driver write of a
// cart document into the stack's read model database.
type floorProbe struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	deliv  []time.Duration
	write  []time.Duration
	err    error
}

func startFloorProbe(ctx context.Context, esdbURL, mongoURI, db, runID string) (*floorProbe, error) {
	es, err := eventstore.Open(ctx, esdbURL, nil)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	head, err := es.HeadPosition(ctx)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("probe: head: %w", err), es.Close())
	}
	pctx, cancel := context.WithCancel(ctx)
	sub, err := es.Subscribe(pctx, &head)
	if err != nil {
		cancel()
		return nil, errors.Join(fmt.Errorf("probe: subscribe: %w", err), es.Close())
	}
	client, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		cancel()
		return nil, errors.Join(fmt.Errorf("probe: connect: %w", err), sub.Close(), es.Close())
	}
	coll := client.Database(db).Collection(probeCollection)
	p := &floorProbe{cancel: cancel, done: make(chan struct{})}
	prefix := runID + "-probe-"
	arrived := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			m, err := sub.Next(pctx)
			if err != nil {
				return
			}
			// Only the probe's own events, one in flight at a time: the
			// benchmark's commands would fill the channel.
			if m.Event != nil && strings.HasPrefix(m.Event.UserID, prefix) {
				select {
				case arrived <- m.Event.UserID:
				case <-pctx.Done():
					return
				}
			}
		}
	}()
	go func() {
		defer close(p.done)
		defer func() {
			_ = sub.Close()
			wg.Wait()
			_ = client.Disconnect(context.WithoutCancel(ctx))
			_ = es.Close()
		}()
		upsert := options.Replace().SetUpsert(true)
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			if i > 0 { // the first sample at once: a short scenario still gets one
				select {
				case <-pctx.Done():
					return
				case <-tick.C:
				}
			}
			user := fmt.Sprintf("%s%d", prefix, i)
			meta := cart.Metadata{CommandID: user, CommandType: "AddItem", Principal: principal, Time: time.Now()}
			ev := cart.ItemAdded{ProductID: product(0), Quantity: 1, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 1}}
			if _, err := es.AppendEvents(pctx, user, -1, meta, []cart.Event{ev}); err != nil {
				p.fail(pctx, fmt.Errorf("probe: append: %w", err))
				return
			}
			acked := time.Now()
			var d time.Duration
		wait:
			for {
				select {
				case u := <-arrived:
					if u == user {
						d = time.Since(acked)
						break wait
					}
				case <-time.After(visibleTimeout):
					p.fail(pctx, fmt.Errorf("probe: event of %s not delivered within %v", user, visibleTimeout))
					return
				case <-pctx.Done():
					return
				}
			}
			doc := newRawDoc(i % 100)
			w, err := loadgen.Timed(func() error {
				_, err := coll.ReplaceOne(pctx, bson.D{{Key: "_id", Value: doc.ID}}, doc, upsert)
				return err
			})
			if err != nil {
				p.fail(pctx, fmt.Errorf("probe: write: %w", err))
				return
			}
			p.mu.Lock()
			p.deliv = append(p.deliv, d)
			p.write = append(p.write, w)
			p.mu.Unlock()
		}
	}()
	return p, nil
}

func (p *floorProbe) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

// stop ends the probe and summarises what it measured. A scenario that
// ended before the first sample did waits for it (a sample takes one
// delivery and one write), so that a floor is always measured.
func (p *floorProbe) stop() (visibilityFloor, error) {
	for deadline := time.Now().Add(visibleTimeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		sampled := len(p.deliv) > 0 || p.err != nil
		p.mu.Unlock()
		select {
		case <-p.done: // stopped by its context
			sampled = true
		default:
		}
		if sampled {
			break
		}
	}
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return visibilityFloor{}, p.err
	}
	if len(p.deliv) == 0 {
		return visibilityFloor{}, errors.New("probe: no sample")
	}
	d, w := slices.Clone(p.deliv), slices.Clone(p.write)
	slices.Sort(d)
	slices.Sort(w)
	return visibilityFloor{
		Samples:     len(d),
		DeliveryP99: ms(loadgen.Percentile(d, 99)), DeliveryP50: ms(loadgen.Percentile(d, 50)),
		WriteP99: ms(loadgen.Percentile(w, 99)), WriteP50: ms(loadgen.Percentile(w, 50)),
	}, nil
}
