package readmodel

import (
	"slices"
	"testing"

	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

func TestCatalogActiveAndDrop(t *testing.T) {
	t.Parallel()
	_, c, _ := newStore(t, Collections{})
	cat := c.Catalog("cat")
	ctx := ctxT(t)

	if got, err := cat.Active(ctx); err != nil || got != DefaultCarts {
		t.Fatalf("Active without a meta document = %q, %v; want %q", got, err, DefaultCarts)
	}
	next := cat.Store("carts_2")
	mustWrite(t, next, projection.CartWrite{Doc: sampleDoc("u1", 3), Create: true})
	if err := next.SaveCheckpoint(ctx, "carts_2", eventlog.Position{Commit: 9, Prepare: 9}); err != nil {
		t.Fatal(err)
	}
	if err := cat.SetActive(ctx, "carts_2"); err != nil {
		t.Fatal(err)
	}
	if err := cat.SetActive(ctx, "carts_2"); err != nil {
		t.Fatalf("setting the same collection again: %v", err)
	}
	if got, err := cat.Active(ctx); err != nil || got != "carts_2" {
		t.Fatalf("Active = %q, %v; want carts_2", got, err)
	}
	if err := cat.SetActive(ctx, ""); err == nil {
		t.Fatal("SetActive(\"\") succeeded")
	}

	if err := cat.Drop(ctx, "carts_2"); err != nil {
		t.Fatal(err)
	}
	if n, err := next.CountCarts(ctx); err != nil || n != 0 {
		t.Fatalf("after Drop: %d documents, %v", n, err)
	}
	if cp, err := next.LoadCheckpoint(ctx, "carts_2"); err != nil || cp != nil {
		t.Fatalf("after Drop: checkpoint %v, %v; want none", cp, err)
	}
	if err := cat.Drop(ctx, "never_there"); err != nil {
		t.Fatalf("dropping a missing collection: %v", err)
	}
}

func TestScanCartsInUserOrder(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Collections{Carts: "scan"})
	ctx := ctxT(t)
	users := []string{"u3", "u1", "u10", "u2"}
	for i, u := range users {
		d := sampleDoc(u, int64(i))
		d.Stale, d.StaleReason = i == 2, map[bool]string{true: "poison"}[i == 2]
		mustWrite(t, s, projection.CartWrite{Doc: d, Create: true})
	}
	var got []string
	for d, err := range s.ScanCarts(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if want := mustGet(t, s, d.UserID); d.Version != want.Version || d.Stale != want.Stale || len(d.Cart.Items) != 2 {
			t.Errorf("scanned %+v, stored %+v", d, want)
		}
		got = append(got, d.UserID)
	}
	if want := []string{"u1", "u10", "u2", "u3"}; !slices.Equal(got, want) {
		t.Fatalf("scan order %v, want %v", got, want)
	}
	if n, err := s.CountCarts(ctx); err != nil || n != 4 {
		t.Fatalf("CountCarts = %d, %v; want 4", n, err)
	}
	// Stopping early ends the scan without error.
	for range s.ScanCarts(ctx) {
		break
	}
}
