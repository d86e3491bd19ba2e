package realstores_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readmodel"
	"github.com/acme/cart/internal/testing/realstores"
	"github.com/acme/cart/internal/testing/storetest"
)

// The assertions of package readmodel's tests on FerretDB, repeated here
// because their helpers are unexported: the adapter must behave the same on
// the real MongoDB, where an unordered bulk write goes on past a failed
// write (FerretDB 1.24 stops) and reports each failure at its own index.

func sampleDoc(user string, version int64) projection.CartDoc {
	return projection.CartDoc{
		UserID: user,
		Cart: cart.Cart{Items: []cart.Item{
			{ProductID: "sku-1", Quantity: 2, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 12, Nanos: 500_000_000}},
			{ProductID: "sku-2", Quantity: 99, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 1_000_000, Nanos: 999_999_999}},
		}},
		Version:   version,
		UpdatedAt: time.Date(2025, 3, 4, 5, 6, 7, 8_000_000, time.UTC),
	}
}

func mustWrite(t *testing.T, s *readmodel.Store, writes ...projection.CartWrite) []string {
	t.Helper()
	conflicts, err := s.WriteCarts(testCtx(t), writes)
	if err != nil {
		t.Fatalf("WriteCarts: %v", err)
	}
	return conflicts
}

func mustGet(t *testing.T, s *readmodel.Store, user string) projection.CartDoc {
	t.Helper()
	d, ok, err := s.GetCart(testCtx(t), user)
	if err != nil || !ok {
		t.Fatalf("GetCart(%s) = %v, %v", user, ok, err)
	}
	return d
}

// TestMongoDB runs the read model adapter against a real MongoDB replica
// set, one server shared by the subtests, each in a database of its own.
func TestMongoDB(t *testing.T) {
	t.Parallel()
	uri := realstores.StartMongoReplicaSet(t)
	c, err := readmodel.Connect(context.Background(), uri)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := c.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	newStore := func() *readmodel.Store {
		return c.Store("t"+strings.ReplaceAll(uuid.NewString(), "-", ""), readmodel.Collections{})
	}

	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		testRoundTrip(t, newStore())
	})
	t.Run("version guard", func(t *testing.T) {
		t.Parallel()
		testWriteGuard(t, newStore)
	})
	t.Run("a bulk write reports only the conflicts", func(t *testing.T) {
		t.Parallel()
		testOnlyConflicts(t, newStore())
	})
	t.Run("checkpoints", func(t *testing.T) {
		t.Parallel()
		testCheckpoints(t, newStore())
	})
	t.Run("a batch far above FerretDB's cap in one bulk write", func(t *testing.T) {
		t.Parallel()
		testLargeBatch(t, newStore())
	})
	// The projection.Store contract with the default options (the MongoDB
	// path, which only a real MongoDB can run: FerretDB stops a bulk write
	// at its first failure) and with FerretDBCompat, which must stay
	// correct on MongoDB too.
	t.Run("contract", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) projection.Store { return newStore() })
	})
	t.Run("lease and fenced checkpoint", func(t *testing.T) {
		t.Parallel()
		testLease(t, c, "t"+strings.ReplaceAll(uuid.NewString(), "-", ""))
	})
	t.Run("contract with FerretDBCompat", func(t *testing.T) {
		t.Parallel()
		fc, err := readmodel.ConnectWith(context.Background(), uri, readmodel.FerretDBCompat())
		if err != nil {
			t.Fatalf("ConnectWith: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := fc.Close(ctx); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		storetest.Run(t, func(t *testing.T) projection.Store {
			return fc.Store("t"+strings.ReplaceAll(uuid.NewString(), "-", ""), readmodel.Collections{})
		})
	})
}

// testLargeBatch writes 1,000 creates and then 1,000 replaces of them in
// one call each: with the default options each is one bulk write.
func testLargeBatch(t *testing.T, s *readmodel.Store) {
	const n = 1000
	creates := make([]projection.CartWrite, n)
	replaces := make([]projection.CartWrite, n)
	for i := range creates {
		user := "u" + strconv.Itoa(i)
		creates[i] = projection.CartWrite{Doc: sampleDoc(user, 0), Create: true}
		replaces[i] = projection.CartWrite{Doc: sampleDoc(user, 1), ExpectedVersion: 0}
	}
	replaces[7].ExpectedVersion = 5 // one conflict in the middle
	if c := mustWrite(t, s, creates...); len(c) != 0 {
		t.Fatalf("conflicts on fresh inserts: %v", c)
	}
	if c := mustWrite(t, s, replaces...); !slices.Equal(c, []string{"u7"}) {
		t.Fatalf("conflicts = %v, want [u7]", c)
	}
	users := make([]string, n)
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
	}
	docs, err := s.LoadCarts(testCtx(t), users)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		want := int64(1)
		if i == 7 {
			want = 0
		}
		if docs[u].Version != want {
			t.Fatalf("%s at version %d, want %d", u, docs[u].Version, want)
		}
	}
}

func testRoundTrip(t *testing.T, s *readmodel.Store) {
	ctx := testCtx(t)
	full := sampleDoc("u1", 7)
	empty := projection.CartDoc{UserID: "u2", Version: -1, Stale: true, StaleReason: "event cart-u2@3 not applied: gap"}
	if c := mustWrite(t, s, projection.CartWrite{Doc: full, Create: true}, projection.CartWrite{Doc: empty, Create: true}); len(c) > 0 {
		t.Fatalf("conflicts on fresh inserts: %v", c)
	}
	for _, want := range []projection.CartDoc{full, empty} {
		if got := mustGet(t, s, want.UserID); !reflect.DeepEqual(got, want) {
			t.Errorf("GetCart(%s) = %+v, want %+v", want.UserID, got, want)
		}
	}
	if _, ok, err := s.GetCart(ctx, "nobody"); ok || err != nil {
		t.Errorf("GetCart(nobody) = %v, %v; want not found, no error", ok, err)
	}
	docs, err := s.LoadCarts(ctx, []string{"u1", "nobody", "u2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || !reflect.DeepEqual(docs["u1"], full) || !reflect.DeepEqual(docs["u2"], empty) {
		t.Errorf("LoadCarts = %+v", docs)
	}
	// MongoDB dates have millisecond precision; the adapter stores UTC.
	d := sampleDoc("u3", 0)
	d.UpdatedAt = time.Date(2025, 1, 2, 3, 4, 5, 123_456_789, time.FixedZone("X", 3600))
	mustWrite(t, s, projection.CartWrite{Doc: d, Create: true})
	got := mustGet(t, s, "u3").UpdatedAt
	if want := d.UpdatedAt.Truncate(time.Millisecond).UTC(); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("UpdatedAt = %v, want %v in UTC", got, want)
	}
}

func testWriteGuard(t *testing.T, newStore func() *readmodel.Store) {
	tests := []struct {
		name         string
		write        projection.CartWrite
		wantConflict bool
		wantVersion  int64 // -2: no document
	}{
		{"replace at the version read", projection.CartWrite{Doc: sampleDoc("u1", 4), ExpectedVersion: 3}, false, 4},
		// Someone else already wrote the version this write makes: done, not a conflict.
		{"replace that someone else already made", projection.CartWrite{Doc: sampleDoc("u1", 3), ExpectedVersion: 2}, false, 3},
		{"replace behind", projection.CartWrite{Doc: sampleDoc("u1", 5), ExpectedVersion: 4}, true, 3},
		{"create over an existing document", projection.CartWrite{Doc: sampleDoc("u1", 0), Create: true}, true, 3},
		{"replace a missing document", projection.CartWrite{Doc: sampleDoc("u9", 1), ExpectedVersion: 0}, true, -2},
		{"mark stale at the same version", projection.CartWrite{Doc: func() projection.CartDoc {
			d := sampleDoc("u1", 3)
			d.Stale, d.StaleReason = true, "poison"
			return d
		}(), ExpectedVersion: 3}, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore()
			mustWrite(t, s, projection.CartWrite{Doc: sampleDoc("u1", 3), Create: true})
			conflicts := mustWrite(t, s, tt.write)
			if got := len(conflicts) == 1 && conflicts[0] == tt.write.Doc.UserID; got != tt.wantConflict || len(conflicts) > 1 {
				t.Errorf("conflicts = %v, want conflict %v", conflicts, tt.wantConflict)
			}
			d, ok, err := s.GetCart(testCtx(t), tt.write.Doc.UserID)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantVersion == -2 {
				if ok {
					t.Errorf("a guarded replace created a document: %+v", d)
				}
				return
			}
			if d.Version != tt.wantVersion {
				t.Errorf("version = %d, want %d", d.Version, tt.wantVersion)
			}
			if !tt.wantConflict && !reflect.DeepEqual(d, tt.write.Doc) {
				t.Errorf("stored %+v, want %+v", d, tt.write.Doc)
			}
		})
	}
}

func testOnlyConflicts(t *testing.T, s *readmodel.Store) {
	mustWrite(t, s,
		projection.CartWrite{Doc: sampleDoc("a", 1), Create: true},
		projection.CartWrite{Doc: sampleDoc("b", 1), Create: true},
		projection.CartWrite{Doc: sampleDoc("c", 1), Create: true},
	)
	conflicts := mustWrite(t, s,
		projection.CartWrite{Doc: sampleDoc("a", 2), ExpectedVersion: 1},
		projection.CartWrite{Doc: sampleDoc("b", 5), ExpectedVersion: 4},
		projection.CartWrite{Doc: sampleDoc("c", 0), Create: true},
		projection.CartWrite{Doc: sampleDoc("d", 0), Create: true},
	)
	slices.Sort(conflicts)
	if !slices.Equal(conflicts, []string{"b", "c"}) {
		t.Errorf("conflicts = %v, want [b c]", conflicts)
	}
	want := map[string]int64{"a": 2, "b": 1, "c": 1, "d": 0}
	for u, v := range want {
		if got := mustGet(t, s, u).Version; got != v {
			t.Errorf("%s at version %d, want %d", u, got, v)
		}
	}

	// A failing write first: every other write must still be applied.
	conflicts = mustWrite(t, s,
		projection.CartWrite{Doc: sampleDoc("a", 0), Create: true},
		projection.CartWrite{Doc: sampleDoc("e", 0), Create: true},
		projection.CartWrite{Doc: sampleDoc("b", 2), ExpectedVersion: 1},
		projection.CartWrite{Doc: sampleDoc("d", 1), ExpectedVersion: 0},
	)
	if !slices.Equal(conflicts, []string{"a"}) {
		t.Errorf("conflicts = %v, want [a]", conflicts)
	}
	want = map[string]int64{"a": 2, "b": 2, "c": 1, "d": 1, "e": 0}
	for u, v := range want {
		if got := mustGet(t, s, u).Version; got != v {
			t.Errorf("%s at version %d, want %d", u, got, v)
		}
	}
}

func testCheckpoints(t *testing.T, s *readmodel.Store) {
	ctx := testCtx(t)
	load := func(name string) *eventlog.Position {
		t.Helper()
		p, err := s.LoadCheckpoint(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := load("live"); p != nil {
		t.Fatalf("fresh checkpoint = %v, want nil", p)
	}
	steps := []struct {
		save, want eventlog.Position
	}{
		{eventlog.Position{Commit: 10, Prepare: 10}, eventlog.Position{Commit: 10, Prepare: 10}},
		{eventlog.Position{Commit: 20, Prepare: 15}, eventlog.Position{Commit: 20, Prepare: 15}},
		{eventlog.Position{Commit: 20, Prepare: 15}, eventlog.Position{Commit: 20, Prepare: 15}}, // same again
		{eventlog.Position{Commit: 20, Prepare: 12}, eventlog.Position{Commit: 20, Prepare: 15}}, // behind: kept
		{eventlog.Position{Commit: 5, Prepare: 99}, eventlog.Position{Commit: 20, Prepare: 15}},  // behind: kept
		{eventlog.Position{Commit: 20, Prepare: 18}, eventlog.Position{Commit: 20, Prepare: 18}},
		{eventlog.Position{Commit: math.MaxInt64, Prepare: math.MaxInt64}, eventlog.Position{Commit: math.MaxInt64, Prepare: math.MaxInt64}},
	}
	for _, st := range steps {
		if err := s.SaveCheckpoint(ctx, "live", st.save); err != nil {
			t.Fatalf("SaveCheckpoint(%v): %v", st.save, err)
		}
		if got := load("live"); got == nil || *got != st.want {
			t.Fatalf("after saving %v: checkpoint %v, want %v", st.save, got, st.want)
		}
	}
	if err := s.SaveCheckpoint(ctx, "live", eventlog.Position{Commit: math.MaxUint64}); err == nil {
		t.Error("a position beyond int64 was accepted")
	}
	if p := load("rebuild"); p != nil {
		t.Errorf("another name sees checkpoint %v", p)
	}
	if err := s.DeleteCheckpoint(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	if p := load("live"); p != nil {
		t.Errorf("deleted checkpoint = %v", p)
	}
}

// testLease: one holder at a time, takeover after expiry with a higher
// epoch, and the old holder fenced off the checkpoint, on MongoDB.
func testLease(t *testing.T, c *readmodel.Client, db string) {
	const ttl = 2 * time.Second
	ctx := testCtx(t)
	a, b := c.Lease(db, "projector", "a", ttl), c.Lease(db, "projector", "b", ttl)
	if epoch, ok, err := a.Acquire(ctx); err != nil || !ok || epoch != 1 {
		t.Fatalf("a: Acquire = %d, %v, %v", epoch, ok, err)
	}
	if _, ok, err := b.Acquire(ctx); err != nil || ok {
		t.Fatalf("b: Acquire of a held lease = %v, %v", ok, err)
	}
	store := c.Store(db, readmodel.Collections{})
	sa := store.Fenced(a)
	if _, err := sa.LoadCheckpoint(ctx, "carts"); err != nil {
		t.Fatal(err)
	}
	pos := eventlog.Position{Commit: 10, Prepare: 10}
	if err := sa.SaveCheckpoint(ctx, "carts", pos); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + ttl/4 + 200*time.Millisecond)
	if epoch, ok, err := b.Acquire(ctx); err != nil || !ok || epoch != 2 {
		t.Fatalf("b: Acquire after expiry = %d, %v, %v", epoch, ok, err)
	}
	sb := store.Fenced(b)
	if p, err := sb.LoadCheckpoint(ctx, "carts"); err != nil || p == nil || *p != pos {
		t.Fatalf("b: LoadCheckpoint = %v, %v", p, err)
	}
	if err := sa.SaveCheckpoint(ctx, "carts", eventlog.Position{Commit: 20, Prepare: 20}); !errors.Is(err, readmodel.ErrLeaseLost) {
		t.Errorf("a: SaveCheckpoint after the takeover = %v, want ErrLeaseLost", err)
	}
	if err := a.Renew(ctx); !errors.Is(err, readmodel.ErrLeaseLost) {
		t.Errorf("a: Renew after the takeover = %v, want ErrLeaseLost", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if epoch, ok, err := a.Acquire(ctx); err != nil || !ok || epoch != 3 {
		t.Errorf("a: Acquire after release = %d, %v, %v", epoch, ok, err)
	}
}
