package readmodel

import (
	"errors"
	"testing"
	"time"

	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/projection"
)

func TestLeaseHolder(t *testing.T) {
	t.Parallel()
	_, c, _ := newStore(t, Collections{})
	a, b := c.Lease("cart", "projector", "a", testTTL), c.Lease("cart", "projector", "b", testTTL)
	if h, err := b.Holder(ctxT(t)); err != nil || h != "" {
		t.Fatalf("Holder of a lease never acquired = %q, %v; want none", h, err)
	}
	acquire(t, a)
	if h, err := b.Holder(ctxT(t)); err != nil || h != "a" {
		t.Errorf("Holder = %q, %v; want a", h, err)
	}
	if err := a.Release(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if h, err := b.Holder(ctxT(t)); err != nil || h != "" {
		t.Errorf("Holder after release = %q, %v; want none", h, err)
	}
	if b.ID() != "b" {
		t.Errorf("ID = %q", b.ID())
	}
}

// TestFencedDocumentWritesStopWhenTheLeaseRunsOut: with the atomic filter
// (no Lease.Check before writes) a fenced store still writes no document
// once its lease has run out by the local clock, whatever the stored
// lease says: a paused holder's late flush does not land.
func TestFencedDocumentWritesStopWhenTheLeaseRunsOut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
	}{
		{"atomic filter", Options{}},
		{"id-only filter", FerretDBCompat()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := embeddedmongo.StartForTest(t)
			c := connectWith(t, srv.URI(), tt.opts)
			store := c.Store("cart", Collections{})
			a := c.Lease("cart", "projector", "a", testTTL)
			acquire(t, a)
			sa := store.Fenced(a)
			mustWrite(t, sa, projection.CartWrite{Doc: sampleDoc("u1", 0), Create: true})
			a.mu.Lock()
			a.validUntil = time.Now().Add(-time.Millisecond) // paused past it
			a.mu.Unlock()
			_, err := sa.WriteCarts(ctxT(t), []projection.CartWrite{{Doc: sampleDoc("u1", 1), ExpectedVersion: 0}})
			if !errors.Is(err, ErrLeaseLost) {
				t.Errorf("WriteCarts after the lease ran out = %v, want ErrLeaseLost", err)
			}
			if v := mustGet(t, store, "u1").Version; v != 0 {
				t.Errorf("u1 at version %d, want 0", v)
			}
		})
	}
}
