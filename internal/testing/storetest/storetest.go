// Package storetest is the contract every projection.Store implementation
// must meet (the version guard, conflicts, checkpoints), as one test suite
// that each implementation's tests run: the projector's fake and the
// MongoDB read model alike, so that the fake cannot drift from the real
// thing.
package storetest

import (
	"context"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

// Run runs the contract against stores made by newStore; each call must
// return an empty store that no other test uses.
func Run(t *testing.T, newStore func(t *testing.T) projection.Store) {
	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		roundTrip(t, newStore(t))
	})
	t.Run("write guard", func(t *testing.T) {
		t.Parallel()
		writeGuard(t, newStore)
	})
	t.Run("conflicts in a batch", func(t *testing.T) {
		t.Parallel()
		batchConflicts(t, newStore(t))
	})
	t.Run("checkpoints", func(t *testing.T) {
		t.Parallel()
		checkpoints(t, newStore(t))
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Doc returns a document with two lines at version, with a time of
// millisecond precision (what BSON keeps).
func Doc(user string, version int64) projection.CartDoc {
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

func write(t *testing.T, s projection.Store, writes ...projection.CartWrite) []string {
	t.Helper()
	conflicts, err := s.WriteCarts(ctxT(t), writes)
	if err != nil {
		t.Fatalf("WriteCarts: %v", err)
	}
	slices.Sort(conflicts)
	return conflicts
}

func load(t *testing.T, s projection.Store, users ...string) map[string]projection.CartDoc {
	t.Helper()
	docs, err := s.LoadCarts(ctxT(t), users)
	if err != nil {
		t.Fatalf("LoadCarts: %v", err)
	}
	return docs
}

func roundTrip(t *testing.T, s projection.Store) {
	full := Doc("u1", 7)
	empty := projection.CartDoc{UserID: "u2", Version: -1, Stale: true, StaleReason: "event cart-u2@3 not applied: gap"}
	if c := write(t, s, projection.CartWrite{Doc: full, Create: true}, projection.CartWrite{Doc: empty, Create: true}); len(c) > 0 {
		t.Fatalf("conflicts on fresh inserts: %v", c)
	}
	docs := load(t, s, "u1", "nobody", "u2")
	if len(docs) != 2 || !reflect.DeepEqual(docs["u1"], full) || !reflect.DeepEqual(docs["u2"], empty) {
		t.Errorf("LoadCarts = %+v\nwant %+v and %+v", docs, full, empty)
	}
	if docs := load(t, s); len(docs) != 0 {
		t.Errorf("LoadCarts() = %v, want none", docs)
	}
}

func writeGuard(t *testing.T, newStore func(t *testing.T) projection.Store) {
	stale := Doc("u1", 3)
	stale.Stale, stale.StaleReason = true, "poison"
	tests := []struct {
		name         string
		write        projection.CartWrite
		wantConflict bool
		wantVersion  int64 // -2: no document
	}{
		{"replace at the version read", projection.CartWrite{Doc: Doc("u1", 4), ExpectedVersion: 3}, false, 4},
		// Someone else already wrote the version this write makes: done.
		{"replace that someone else already made", projection.CartWrite{Doc: Doc("u1", 3), ExpectedVersion: 2}, false, 3},
		{"replace behind", projection.CartWrite{Doc: Doc("u1", 5), ExpectedVersion: 4}, true, 3},
		// Known is a hint a store may use only after LoadCheckpoint (the
		// projector's start), which this suite never calls before writing.
		{"known replace behind", projection.CartWrite{Doc: Doc("u1", 5), ExpectedVersion: 4, Known: true}, true, 3},
		{"create over an existing document", projection.CartWrite{Doc: Doc("u1", 0), Create: true}, true, 3},
		// A create that finds the version it would make was not made by
		// it: the caller must read what the document already reflects.
		{"create that someone else already made", projection.CartWrite{Doc: Doc("u1", 3), Create: true}, true, 3},
		{"replace a missing document", projection.CartWrite{Doc: Doc("u9", 1), ExpectedVersion: 0}, true, -2},
		{"mark stale at the same version", projection.CartWrite{Doc: stale, ExpectedVersion: 3}, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			write(t, s, projection.CartWrite{Doc: Doc("u1", 3), Create: true})
			conflicts := write(t, s, tt.write)
			if got := slices.Equal(conflicts, []string{tt.write.Doc.UserID}); got != tt.wantConflict || len(conflicts) > 1 {
				t.Errorf("conflicts = %v, want conflict %v", conflicts, tt.wantConflict)
			}
			d, ok := load(t, s, tt.write.Doc.UserID)[tt.write.Doc.UserID]
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

func batchConflicts(t *testing.T, s projection.Store) {
	write(t, s,
		projection.CartWrite{Doc: Doc("a", 1), Create: true},
		projection.CartWrite{Doc: Doc("b", 1), Create: true},
		projection.CartWrite{Doc: Doc("c", 1), Create: true},
	)
	conflicts := write(t, s,
		projection.CartWrite{Doc: Doc("a", 2), ExpectedVersion: 1},
		projection.CartWrite{Doc: Doc("b", 5), ExpectedVersion: 4},
		projection.CartWrite{Doc: Doc("c", 0), Create: true},
		projection.CartWrite{Doc: Doc("d", 0), Create: true},
	)
	if !slices.Equal(conflicts, []string{"b", "c"}) {
		t.Errorf("conflicts = %v, want [b c]", conflicts)
	}
	// A failing write first (FerretDB stops a bulk write there), yet every
	// other write must be applied.
	conflicts = write(t, s,
		projection.CartWrite{Doc: Doc("a", 0), Create: true},
		projection.CartWrite{Doc: Doc("e", 0), Create: true},
		projection.CartWrite{Doc: Doc("b", 2), ExpectedVersion: 1},
		projection.CartWrite{Doc: Doc("d", 1), ExpectedVersion: 0},
	)
	if !slices.Equal(conflicts, []string{"a"}) {
		t.Errorf("conflicts = %v, want [a]", conflicts)
	}
	docs := load(t, s, "a", "b", "c", "d", "e")
	for u, v := range map[string]int64{"a": 2, "b": 2, "c": 1, "d": 1, "e": 0} {
		if got, ok := docs[u]; !ok || got.Version != v {
			t.Errorf("%s at version %d (found %v), want %d", u, got.Version, ok, v)
		}
	}
}

func checkpoints(t *testing.T, s projection.Store) {
	ctx := ctxT(t)
	get := func(name string) *eventlog.Position {
		t.Helper()
		p, err := s.LoadCheckpoint(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := get("live"); p != nil {
		t.Fatalf("fresh checkpoint = %v, want nil", p)
	}
	pos := func(c, p uint64) eventlog.Position { return eventlog.Position{Commit: c, Prepare: p} }
	steps := []struct{ save, want eventlog.Position }{
		{pos(10, 10), pos(10, 10)},
		{pos(20, 15), pos(20, 15)},
		{pos(20, 15), pos(20, 15)}, // the same again
		{pos(20, 12), pos(20, 15)}, // behind: kept
		{pos(5, 99), pos(20, 15)},  // behind: kept
		{pos(20, 18), pos(20, 18)},
		{pos(math.MaxInt64, math.MaxInt64), pos(math.MaxInt64, math.MaxInt64)},
	}
	for _, st := range steps {
		if err := s.SaveCheckpoint(ctx, "live", st.save); err != nil {
			t.Fatalf("SaveCheckpoint(%v): %v", st.save, err)
		}
		if got := get("live"); got == nil || *got != st.want {
			t.Fatalf("after saving %v: checkpoint %v, want %v", st.save, got, st.want)
		}
	}
	if p := get("other"); p != nil {
		t.Errorf("another name sees checkpoint %v", p)
	}
}
