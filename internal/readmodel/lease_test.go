package readmodel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/testing/storetest"
)

// testTTL is short so that expiry tests are quick; an acquirer waits
// ttl/4 beyond expires_at (the clock-skew allowance).
const testTTL = 2 * time.Second

func acquire(t *testing.T, l *Lease) (int64, bool) {
	t.Helper()
	epoch, ok, err := l.Acquire(ctxT(t))
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return epoch, ok
}

// afterExpiry waits until a lease acquired or renewed before the call has
// expired for others (ttl plus the skew allowance, plus a margin).
func afterExpiry() { time.Sleep(testTTL + testTTL/4 + 200*time.Millisecond) }

func TestLeaseOneHolderAtATime(t *testing.T) {
	t.Parallel()
	_, c, _ := newStore(t, Collections{})
	a, b := c.Lease("cart", "projector", "a", testTTL), c.Lease("cart", "projector", "b", testTTL)
	if epoch, ok := acquire(t, a); !ok || epoch != 1 {
		t.Fatalf("a: Acquire = %d, %v; want epoch 1", epoch, ok)
	}
	if epoch, ok := acquire(t, b); ok {
		t.Fatalf("b acquired a held lease (epoch %d)", epoch)
	}
	// Acquire by the holder renews, same epoch.
	if epoch, ok := acquire(t, a); !ok || epoch != 1 {
		t.Errorf("a: Acquire again = %d, %v; want epoch 1", epoch, ok)
	}
	// Renewing keeps it past the first ttl.
	for range 4 {
		time.Sleep(testTTL / 3)
		if err := a.Renew(ctxT(t)); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		if _, ok := acquire(t, b); ok {
			t.Fatal("b acquired a lease that is being renewed")
		}
	}
	if err := a.Check(ctxT(t)); err != nil {
		t.Errorf("Check by the holder: %v", err)
	}
	if err := b.Check(ctxT(t)); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Check by the other = %v, want ErrLeaseLost", err)
	}
	// Another lease name is independent.
	if _, ok := acquire(t, c.Lease("cart", "rebuild", "b", testTTL)); !ok {
		t.Error("b could not acquire another lease")
	}
}

// TestLeaseConcurrentAcquire: many replicas start at once, on FerretDB,
// whose conditional updates are not atomic: the claim insert still lets
// exactly one win each epoch.
func TestLeaseConcurrentAcquire(t *testing.T) {
	t.Parallel()
	_, c, _ := newStore(t, Collections{})
	for round := range 5 {
		name := fmt.Sprintf("projector-%d", round)
		const n = 8
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			winner []string
		)
		start := make(chan struct{})
		for i := range n {
			l := c.Lease("cart", name, fmt.Sprintf("r%d", i), testTTL)
			wg.Go(func() {
				<-start
				_, ok, err := l.Acquire(context.Background())
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					winner = append(winner, l.holder)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(winner) != 1 {
			t.Fatalf("round %d: holders %v, want exactly one", round, winner)
		}
	}
}

func TestLeaseTakeoverAfterExpiry(t *testing.T) {
	t.Parallel()
	_, c, _ := newStore(t, Collections{})
	a, b := c.Lease("cart", "projector", "a", testTTL), c.Lease("cart", "projector", "b", testTTL)
	acquire(t, a)
	afterExpiry() // a stops renewing
	epoch, ok := acquire(t, b)
	if !ok || epoch != 2 {
		t.Fatalf("b: Acquire after expiry = %d, %v; want epoch 2", epoch, ok)
	}
	if err := a.Renew(ctxT(t)); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a: Renew after the takeover = %v, want ErrLeaseLost", err)
	}
	if a.Epoch() != 0 {
		t.Errorf("a still believes it holds epoch %d", a.Epoch())
	}
	if _, ok := acquire(t, a); ok {
		t.Error("a took the lease back from b")
	}
	// b in turn expires: a gets epoch 3.
	afterExpiry()
	if epoch, ok := acquire(t, a); !ok || epoch != 3 {
		t.Errorf("a: Acquire after b expired = %d, %v; want epoch 3", epoch, ok)
	}
}

func TestLeaseReleaseLetsTheOtherAcquireAtOnce(t *testing.T) {
	t.Parallel()
	_, c, _ := newStore(t, Collections{})
	a, b := c.Lease("cart", "projector", "a", time.Minute), c.Lease("cart", "projector", "b", time.Minute)
	acquire(t, a)
	if err := a.Release(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if epoch, ok := acquire(t, b); !ok || epoch != 2 {
		t.Fatalf("b: Acquire after release = %d, %v; want epoch 2", epoch, ok)
	}
	if err := a.Release(ctxT(t)); err != nil {
		t.Errorf("Release of a lease not held: %v", err)
	}
	if err := b.Check(ctxT(t)); err != nil {
		t.Errorf("a's second Release disturbed b: %v", err)
	}
}

// TestFencedCheckpointPausedHolder: a holder that stops renewing (paused)
// and wakes up after another took over cannot move the checkpoint, nor
// write documents unguarded, even though its local state still has an
// epoch; the new holder's first LoadCheckpoint fenced it off.
func TestFencedCheckpointPausedHolder(t *testing.T) {
	t.Parallel()
	store, c, _ := newStore(t, Collections{})
	a, b := c.Lease("cart", "projector", "a", testTTL), c.Lease("cart", "projector", "b", testTTL)
	acquire(t, a)
	sa := store.Fenced(a)
	ctx := ctxT(t)
	pos := func(n uint64) eventlog.Position { return eventlog.Position{Commit: n, Prepare: n} }
	if p, err := sa.LoadCheckpoint(ctx, "carts"); p != nil || err != nil {
		t.Fatalf("fresh LoadCheckpoint = %v, %v", p, err)
	}
	if err := sa.SaveCheckpoint(ctx, "carts", pos(10)); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, sa, projection.CartWrite{Doc: sampleDoc("u1", 0), Create: true})

	afterExpiry() // a is paused
	if _, ok := acquire(t, b); !ok {
		t.Fatal("b could not take over")
	}
	sb := store.Fenced(b)
	if p, err := sb.LoadCheckpoint(ctx, "carts"); err != nil || p == nil || *p != pos(10) {
		t.Fatalf("b: LoadCheckpoint = %v, %v; want %v", p, err, pos(10))
	}

	// a wakes up, its local epoch intact: first as if its clock had not
	// noticed the pause (only the stored fence stops it), then as it is.
	a.mu.Lock()
	a.validUntil = time.Now().Add(time.Minute)
	a.mu.Unlock()
	if err := sa.SaveCheckpoint(ctx, "carts", pos(20)); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a: SaveCheckpoint after the takeover = %v, want ErrLeaseLost", err)
	}
	if _, err := sa.WriteCarts(ctx, []projection.CartWrite{{Doc: sampleDoc("u1", 1), ExpectedVersion: 0}}); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a: WriteCarts after the takeover = %v, want ErrLeaseLost", err)
	}
	if err := sa.SaveCheckpoint(ctx, "carts", pos(30)); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a: SaveCheckpoint with the lease lost locally = %v, want ErrLeaseLost", err)
	}
	if p, err := sb.LoadCheckpoint(ctx, "carts"); err != nil || *p != pos(10) {
		t.Errorf("checkpoint after a's attempts = %v, %v; want %v", p, err, pos(10))
	}
	if v := mustGet(t, store, "u1").Version; v != 0 {
		t.Errorf("u1 at version %d after a's attempt, want 0", v)
	}

	// b goes on.
	if err := sb.SaveCheckpoint(ctx, "carts", pos(15)); err != nil {
		t.Fatal(err)
	}
	if c := mustWrite(t, sb, projection.CartWrite{Doc: sampleDoc("u1", 1), ExpectedVersion: 0}); len(c) != 0 {
		t.Errorf("b: conflicts %v", c)
	}
	// An unfenced reader (admin) sees the position.
	if p, err := store.LoadCheckpoint(ctx, "carts"); err != nil || *p != pos(15) {
		t.Errorf("unfenced LoadCheckpoint = %v, %v; want %v", p, err, pos(15))
	}
}

// TestFencedStoreContract: a fenced store keeps the projection.Store
// contract (checkpoints only move forward, conflicts as before).
func TestFencedStoreContract(t *testing.T) {
	t.Parallel()
	srv := embeddedmongo.StartForTest(t)
	c := connect(t, srv.URI())
	storetest.Run(t, func(t *testing.T) projection.Store {
		db := srv.NewDatabaseName(t)
		l := c.Lease(db, "projector", "me", time.Minute)
		if _, ok, err := l.Acquire(ctxT(t)); err != nil || !ok {
			t.Fatalf("Acquire = %v, %v", ok, err)
		}
		return c.Store(db, Collections{}).Fenced(l)
	})
}

func TestFencedStoreWithoutLease(t *testing.T) {
	t.Parallel()
	store, c, _ := newStore(t, Collections{})
	s := store.Fenced(c.Lease("cart", "projector", "me", time.Minute)) // never acquired
	if _, err := s.LoadCheckpoint(ctxT(t), "carts"); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("LoadCheckpoint without the lease = %v, want ErrLeaseLost", err)
	}
	if err := s.SaveCheckpoint(ctxT(t), "carts", eventlog.Position{Commit: 1, Prepare: 1}); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("SaveCheckpoint without the lease = %v, want ErrLeaseLost", err)
	}
}

// TestLeaseCheckReadsTheDocumentOnceItsConfirmationAges: a holder whose
// lease document was taken from it behind its back (as clocks that differ
// by more than the skew allowance could make happen) writes on for at most
// ttl/8 after its last confirmation, then Check reads the document and
// refuses; until then Check costs no read.
func TestLeaseCheckReadsTheDocumentOnceItsConfirmationAges(t *testing.T) {
	t.Parallel()
	_, c, _ := newStore(t, Collections{})
	a := c.Lease("cart", "projector", "a", testTTL)
	if _, ok := acquire(t, a); !ok {
		t.Fatal("a could not acquire a free lease")
	}
	// Another holder's takeover, written straight into the document.
	if _, err := a.leases.UpdateOne(ctxT(t), bson.D{{Key: "_id", Value: "projector"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "holder", Value: "b"}, {Key: "epoch", Value: int64(2)}}}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Check(ctxT(t)); err != nil {
		t.Fatalf("Check right after acquiring = %v; want nil without a read", err)
	}
	time.Sleep(testTTL/8 + 50*time.Millisecond)
	if err := a.Check(ctxT(t)); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Check once the confirmation is ttl/8 old = %v; want ErrLeaseLost", err)
	}
	if _, held := a.held(); held {
		t.Fatal("the lease still counts as held after Check found it taken")
	}
}
