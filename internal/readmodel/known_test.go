package readmodel

import (
	"slices"
	"testing"

	"github.com/acme/cart/internal/projection"
)

// TestKnownReplaceTrustsTheFencedWriter: while the lease is at the epoch
// that LoadCheckpoint claimed, a Known replace is written without reading
// the stored version first. The test shows it by moving the document
// behind the store's back, which a single fenced writer rules out: the
// read would have made the write a conflict, the trusted write lands.
func TestKnownReplaceTrustsTheFencedWriter(t *testing.T) {
	t.Parallel()
	base, c, _ := newStore(t, Collections{})
	l := c.Lease("cart", "projector", "me", testTTL*30)
	if _, ok := acquire(t, l); !ok {
		t.Fatal("Acquire failed")
	}
	s := base.Fenced(l)
	if _, err := s.LoadCheckpoint(ctxT(t), "carts"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, projection.CartWrite{Doc: sampleDoc("u1", 0), Create: true})
	mustWrite(t, base, projection.CartWrite{Doc: sampleDoc("u1", 2), ExpectedVersion: 0})

	if c := mustWrite(t, s, projection.CartWrite{Doc: sampleDoc("u1", 1), ExpectedVersion: 0, Known: true}); len(c) != 0 {
		t.Fatalf("conflicts %v: the Known replace was guarded by a read", c)
	}
	if got := mustGet(t, base, "u1"); got.Version != 1 {
		t.Errorf("u1 at version %d, want the Known replace's 1", got.Version)
	}
	// Not Known: the read guards it as ever.
	if c := mustWrite(t, s, projection.CartWrite{Doc: sampleDoc("u1", 5), ExpectedVersion: 4}); !slices.Equal(c, []string{"u1"}) {
		t.Errorf("conflicts = %v, want [u1]", c)
	}
}

// TestKnownReplaceGuardedAfterAnotherHolder: once someone else has held the
// lease since LoadCheckpoint, the store trusts no Known replace: what the
// projector knows may predate the other holder's writes.
func TestKnownReplaceGuardedAfterAnotherHolder(t *testing.T) {
	t.Parallel()
	base, c, _ := newStore(t, Collections{})
	la, lb := c.Lease("cart", "projector", "a", testTTL*30), c.Lease("cart", "projector", "b", testTTL*30)
	if _, ok := acquire(t, la); !ok {
		t.Fatal("a: Acquire failed")
	}
	a := base.Fenced(la)
	if _, err := a.LoadCheckpoint(ctxT(t), "carts"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, projection.CartWrite{Doc: sampleDoc("u1", 0), Create: true})
	if err := la.Release(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, ok := acquire(t, lb); !ok {
		t.Fatal("b: Acquire failed")
	}
	b := base.Fenced(lb)
	if _, err := b.LoadCheckpoint(ctxT(t), "carts"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, b, projection.CartWrite{Doc: sampleDoc("u1", 1), ExpectedVersion: 0})
	if err := lb.Release(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, ok := acquire(t, la); !ok {
		t.Fatal("a: Acquire again failed")
	}

	if c := mustWrite(t, a, projection.CartWrite{Doc: sampleDoc("u1", 1), ExpectedVersion: 0, Known: true}); len(c) != 0 {
		t.Fatalf("conflicts = %v for a write of the version already stored", c)
	}
	if c := mustWrite(t, a, projection.CartWrite{Doc: sampleDoc("u1", 2), ExpectedVersion: 0, Known: true}); !slices.Equal(c, []string{"u1"}) {
		t.Errorf("conflicts = %v, want [u1]: a Known replace from before the other holder overwrote its write", c)
	}
	if got := mustGet(t, base, "u1"); got.Version != 1 {
		t.Errorf("u1 at version %d, want the other holder's 1", got.Version)
	}
}
