package readmodel

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/dev/netfault"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/testing/storetest"
)

// newStore starts an embedded FerretDB (about 10 ms) and returns a Store on
// it, with the options for FerretDB.
func newStore(t *testing.T, names Collections) (*Store, *Client, *embeddedmongo.Server) {
	t.Helper()
	srv := embeddedmongo.StartForTest(t)
	c := connect(t, srv.URI())
	return c.Store("cart", names), c, srv
}

// connect connects with FerretDBCompat: every server of these tests is the
// embedded FerretDB (the default options are tested against MongoDB in
// package realstores).
func connect(t *testing.T, uri string) *Client {
	t.Helper()
	return connectWith(t, uri, FerretDBCompat())
}

func connectWith(t *testing.T, uri string, opts Options) *Client {
	t.Helper()
	c, err := ConnectWith(context.Background(), uri, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

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

func mustWrite(t *testing.T, s *Store, writes ...projection.CartWrite) []string {
	t.Helper()
	conflicts, err := s.WriteCarts(ctxT(t), writes)
	if err != nil {
		t.Fatalf("WriteCarts: %v", err)
	}
	return conflicts
}

func mustGet(t *testing.T, s *Store, user string) projection.CartDoc {
	t.Helper()
	d, ok, err := s.GetCart(ctxT(t), user)
	if err != nil || !ok {
		t.Fatalf("GetCart(%s) = %v, %v", user, ok, err)
	}
	return d
}

func TestUpdatedAtKeepsMilliseconds(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Collections{})
	d := sampleDoc("u1", 0)
	d.UpdatedAt = time.Date(2025, 1, 2, 3, 4, 5, 123_456_789, time.FixedZone("X", 3600))
	mustWrite(t, s, projection.CartWrite{Doc: d, Create: true})
	got := mustGet(t, s, "u1").UpdatedAt
	if want := d.UpdatedAt.Truncate(time.Millisecond).UTC(); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("UpdatedAt = %v, want %v in UTC", got, want)
	}
}

// TestStoreContract runs the projection.Store contract on FerretDB, with the
// options for FerretDB.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	srv := embeddedmongo.StartForTest(t)
	c := connect(t, srv.URI())
	storetest.Run(t, func(t *testing.T) projection.Store {
		return c.Store(srv.NewDatabaseName(t), Collections{})
	})
}

// TestDefaultOptionsOnFerretDB runs what of the MongoDB path FerretDB
// serves correctly (if slowly): LoadCarts with one find and $in, and single
// writes. A bulk write with a failure in it would stop there on FerretDB,
// which is why the contract runs with the defaults only against MongoDB.
func TestDefaultOptionsOnFerretDB(t *testing.T) {
	t.Parallel()
	srv := embeddedmongo.StartForTest(t)
	s := connectWith(t, srv.URI(), Options{}).Store("cart", Collections{})
	mustWrite(t, s, projection.CartWrite{Doc: sampleDoc("u1", 0), Create: true}, projection.CartWrite{Doc: sampleDoc("u2", 3), Create: true})
	if c := mustWrite(t, s, projection.CartWrite{Doc: sampleDoc("u2", 5), ExpectedVersion: 4}); len(c) != 1 || c[0] != "u2" {
		t.Errorf("conflicts of a replace behind = %v, want [u2]", c)
	}
	docs, err := s.LoadCarts(ctxT(t), []string{"u1", "u2", "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs["u1"].Version != 0 || docs["u2"].Version != 3 {
		t.Errorf("LoadCarts = %+v", docs)
	}
}

func TestConnectRejectsNegativeBulkCap(t *testing.T) {
	if _, err := ConnectWith(context.Background(), "mongodb://127.0.0.1:1/", Options{MaxBulkWrite: -1}); err == nil {
		t.Error("MaxBulkWrite -1 was accepted")
	}
}

func TestCheckpointLimits(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Collections{})
	ctx := ctxT(t)
	if err := s.SaveCheckpoint(ctx, "live", eventlog.Position{Commit: math.MaxUint64}); err == nil {
		t.Error("a position beyond int64 was accepted")
	}
	if err := s.SaveCheckpoint(ctx, "live", eventlog.Position{Commit: 7, Prepare: 7}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCheckpoint(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.LoadCheckpoint(ctx, "live"); p != nil || err != nil {
		t.Errorf("deleted checkpoint = %v, %v; want none", p, err)
	}
}
func TestCollectionsAreSeparate(t *testing.T) {
	t.Parallel()
	live, client, _ := newStore(t, Collections{})
	rebuild := client.Store("cart", Collections{Carts: "carts_rebuild"})
	if live.CartsCollection() != DefaultCarts || rebuild.CartsCollection() != "carts_rebuild" {
		t.Fatalf("collections %s, %s", live.CartsCollection(), rebuild.CartsCollection())
	}
	mustWrite(t, rebuild, projection.CartWrite{Doc: sampleDoc("u1", 0), Create: true})
	if _, ok, err := live.GetCart(ctxT(t), "u1"); ok || err != nil {
		t.Errorf("the live collection sees the rebuild's document (ok %v, err %v)", ok, err)
	}
	// Both use the same checkpoints collection by default; names keep them apart.
	if err := rebuild.SaveCheckpoint(ctxT(t), "rebuild", eventlog.Position{Commit: 1, Prepare: 1}); err != nil {
		t.Fatal(err)
	}
	if p, err := live.LoadCheckpoint(ctxT(t), "rebuild"); err != nil || p == nil {
		t.Errorf("checkpoint of another store's projector = %v, %v", p, err)
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := connect(t, "mongodb://"+addr+"/?serverSelectionTimeoutMS=200&connectTimeoutMS=200")
	s := c.Store("cart", Collections{})
	ctx := ctxT(t)
	checks := map[string]error{
		"Ping": c.Ping(ctx),
		"GetCart": func() error {
			_, _, err := s.GetCart(ctx, "u1")
			return err
		}(),
		"LoadCarts": func() error {
			_, err := s.LoadCarts(ctx, []string{"u1"})
			return err
		}(),
		"WriteCarts": func() error {
			_, err := s.WriteCarts(ctx, []projection.CartWrite{{Doc: sampleDoc("u1", 0), Create: true}})
			return err
		}(),
		"SaveCheckpoint": s.SaveCheckpoint(ctx, "x", eventlog.Position{}),
		"LoadCheckpoint": func() error {
			_, err := s.LoadCheckpoint(ctx, "x")
			return err
		}(),
	}
	for op, err := range checks {
		if !errors.Is(err, cart.ErrUnavailable) {
			t.Errorf("%s = %v, want cart.ErrUnavailable", op, err)
		}
	}
}

func TestServerGoneIsUnavailable(t *testing.T) {
	t.Parallel()
	srv := embeddedmongo.StartForTest(t)
	px := netfault.Start(t, strings.TrimSuffix(strings.TrimPrefix(srv.URI(), "mongodb://"), "/"))
	c := connect(t, "mongodb://"+px.Addr()+"/?serverSelectionTimeoutMS=300")
	s := c.Store("cart", Collections{})
	if err := c.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	px.Pause()
	if _, _, err := s.GetCart(ctxT(t), "u1"); !errors.Is(err, cart.ErrUnavailable) {
		t.Errorf("GetCart after the server went away = %v, want cart.ErrUnavailable", err)
	}
}

func TestCallerCancellationIsNotUnavailable(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Collections{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := s.GetCart(ctx, "u1")
	if !errors.Is(err, context.Canceled) || errors.Is(err, cart.ErrUnavailable) {
		t.Errorf("GetCart with a cancelled context = %v, want context.Canceled only", err)
	}
}
