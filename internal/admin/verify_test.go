package admin

import (
	"fmt"
	"strings"
	"testing"

	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readside"
)

func TestVerifyReportsOnlyRealDifferences(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded FerretDB")
	}
	t.Parallel()
	var rec *recordingCatalog
	e := newTestEnv(t, envOptions{catalog: func(c readside.Catalog) readside.Catalog { rec = &recordingCatalog{Catalog: c}; return rec }})
	users := []string{"u1", "u2", "u3", "u4"}
	for i := range 2 {
		for _, u := range users {
			e.log.append(t, u, add(fmt.Sprintf("p%d", i), 1))
		}
	}
	e.log.appendRaw(t, "u4", "CouponApplied", []byte(`{}`)) // a poisoned cart is stale in both
	e.waitProjected()

	var reports []Progress
	res, err := e.svc.Verify(ctxT(t), func(p Progress) { reports = append(reports, p) })
	if err != nil {
		t.Fatal(err)
	}
	if res.CartsChecked != 4 || len(res.Differences) != 0 || len(reports) < 2 {
		t.Fatalf("verify of a sound read model = %+v after %d reports; want 4 carts, no differences", res, len(reports))
	}

	// Corrupt u1's quantity and invent a cart with no events.
	store := e.catalog.Store("carts")
	d := e.doc("u1")
	d.Cart = d.Cart.Clone()
	d.Cart.Items[0].Quantity = 42
	ghost := projection.CartDoc{UserID: "ghost", Version: 0}
	if c, err := store.WriteCarts(ctxT(t), []projection.CartWrite{
		{Doc: d, ExpectedVersion: d.Version}, {Doc: ghost, Create: true},
	}); err != nil || len(c) > 0 {
		t.Fatalf("corrupting: %v, conflicts %v", err, c)
	}
	stop := e.startAppender("u2", "u3") // writes during the verification are no difference
	res, err = e.svc.Verify(ctxT(t), nil)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if res.CartsChecked != 5 || len(res.Differences) != 2 {
		t.Fatalf("result = %+v; want 5 carts checked and 2 differences", res)
	}
	g, u1 := res.Differences[0], res.Differences[1]
	if g.UserID != "ghost" || !strings.Contains(g.Summary, "past the log's last version -1") || g.LiveVersion != 0 || g.ReplayVersion != -1 {
		t.Errorf("first difference = %+v; want the ghost cart", g)
	}
	if u1.UserID != "u1" || u1.Summary != "item p0 quantity: live 42, replay 1" || u1.LiveVersion != 1 || u1.ReplayVersion != 1 {
		t.Errorf("second difference = %+v; want u1's quantity", u1)
	}

	// Every scratch collection was dropped (before use and after).
	drops := rec.dropped()
	if len(drops) != 4 || !strings.HasPrefix(drops[0], "verify_") || drops[0] != drops[1] || drops[2] != drops[3] {
		t.Fatalf("drops = %v; want each scratch collection dropped twice", drops)
	}
	for _, name := range []string{drops[0], drops[2]} {
		if n, err := e.catalog.Store(name).CountCarts(ctxT(t)); err != nil || n != 0 {
			t.Errorf("scratch collection %s holds %d documents, %v", name, n, err)
		}
	}
	if e.live.Collection() != "carts" {
		t.Errorf("verification switched the read model to %q", e.live.Collection())
	}
}
