package command_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/testing/commandtest"
)

func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func eur(units int64) cart.Money { return cart.Money{CurrencyCode: "EUR", Units: units} }

// addItem adds at the price the app shows and testCatalog charges: EUR 3.
func addItem(p string, q int) cart.AddItem {
	shown := eur(3)
	return cart.AddItem{ProductID: p, Quantity: q, ShownPrice: &shown}
}

func ptr[T any](v T) *T { return &v }

// fixture is a handler on a spied memory store.
type fixture struct {
	mem *commandtest.MemoryStore
	spy *commandtest.Spy
	h   *command.Handler
}

func newFixture(opts command.Options) fixture {
	mem := commandtest.NewMemoryStore()
	spy := &commandtest.Spy{Store: mem}
	return fixture{mem: mem, spy: spy, h: command.NewHandler(spy, priced(opts))}
}

func (f fixture) do(tb testing.TB, env command.Envelope, cmd cart.Command) command.Result {
	tb.Helper()
	res, err := f.h.Handle(testCtx(tb), env, cmd)
	if err != nil {
		tb.Fatalf("Handle(%s %+v): %v", cmd.Name(), cmd, err)
	}
	return res
}

// cartOf folds the user's stream, the truth the handler must have written.
func (f fixture) cartOf(tb testing.TB, user string) cart.Cart {
	tb.Helper()
	var c cart.Cart
	if err := f.mem.LoadEvents(testCtx(tb), user, 0, func(_ int64, e cart.Event, _ cart.Metadata) error {
		c = c.Apply(e)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestHandleVersionsAndEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{})
	env := command.Envelope{UserID: "u1"}
	steps := []struct {
		cmd         cart.Command
		wantVersion int64
	}{
		{addItem("a", 2), 0},
		{addItem("b", 1), 1},
		{addItem("a", 1), 2},
		{cart.ChangeItemQuantity{ProductID: "b", Quantity: 5}, 3},
		{cart.ChangeItemQuantity{ProductID: "b", Quantity: 5}, 3}, // same quantity: nothing written
		{cart.RemoveItem{ProductID: "a"}, 4},
		{cart.ClearCart{}, 5},
		{cart.ClearCart{}, 5}, // empty already: nothing written
	}
	for i, s := range steps {
		if res := f.do(t, env, s.cmd); res.Version != s.wantVersion || res.Duplicate || res.Checkout != nil {
			t.Fatalf("step %d %s: result %+v, want version %d", i, s.cmd.Name(), res, s.wantVersion)
		}
	}
	if n := f.mem.Len("u1"); n != 6 {
		t.Fatalf("stream holds %d events, want 6", n)
	}
	if c := f.cartOf(t, "u1"); !c.IsEmpty() {
		t.Fatalf("cart after clear = %+v, want empty", c)
	}
}

func TestHandleCheckout(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{Catalog: testCatalog{"a": {CurrencyCode: "EUR", Units: 1, Nanos: 250_000_000}}})
	f.do(t, command.Envelope{UserID: "u"}, cart.AddItem{ProductID: "a", Quantity: 2})
	f.do(t, command.Envelope{UserID: "u"}, addItem("b", 1))
	id := uuid.NewString()
	res := f.do(t, command.Envelope{UserID: "u", CommandID: id}, cart.CheckoutCart{CheckoutID: "ignored"})
	if res.Version != 2 || res.Checkout == nil {
		t.Fatalf("checkout result %+v, want version 2 with the checkout", res)
	}
	co := res.Checkout
	if co.CheckoutID != command.CheckoutID(id) || len(co.Items) != 2 || co.Total != (cart.Money{CurrencyCode: "EUR", Units: 5, Nanos: 500_000_000}) {
		t.Fatalf("checkout = %+v; want ID derived from the command ID, 2 lines, total 5.50 EUR", co)
	}
	if !f.cartOf(t, "u").IsEmpty() {
		t.Fatal("cart not empty after checkout")
	}
	_, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u"}, cart.CheckoutCart{})
	if !errors.Is(err, cart.ErrCartEmpty) {
		t.Fatalf("second checkout = %v, want ErrCartEmpty", err)
	}
}

func TestHandleRecordsMetadata(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("X", 3600))
	f := newFixture(command.Options{Now: func() time.Time { return at }})
	id := uuid.NewString()
	f.do(t, command.Envelope{UserID: "u", CommandID: id, Principal: "alice", CorrelationID: "corr", CausationID: "cause", Reason: "gift"}, addItem("a", 1))
	f.do(t, command.Envelope{UserID: "u"}, addItem("b", 1))

	m := f.mem.Metadata("u", 0)
	want := cart.Metadata{CommandID: id, CommandType: "AddItem", CommandHash: command.Fingerprint("u", addItem("a", 1)),
		CorrelationID: "corr", CausationID: "cause", Principal: "alice", Reason: "gift", Time: at.UTC()}
	if m != want {
		t.Errorf("metadata = %+v\nwant       %+v", m, want)
	}
	anon := f.mem.Metadata("u", 1)
	if _, err := uuid.Parse(anon.CommandID); err != nil || anon.Principal != command.DefaultPrincipal || anon.CorrelationID != anon.CommandID {
		t.Errorf("defaults = %+v; want a generated command ID, principal %q, correlation = command ID", anon, command.DefaultPrincipal)
	}
}

func TestHandleRejectsInvalidRequests(t *testing.T) {
	t.Parallel()
	long := string(make([]byte, command.MaxReasonLength+1))
	tests := []struct {
		name       string
		env        command.Envelope
		cmd        cart.Command
		wantFields []string
	}{
		{"everything wrong at once", command.Envelope{UserID: "", CommandID: "not-a-uuid"}, cart.AddItem{ProductID: "p 1", Quantity: 0, ShownPrice: &cart.Money{CurrencyCode: "eur"}},
			[]string{"user_id", "command_id", "product_id", "quantity", "unit_price.currency_code"}},
		{"bad user", command.Envelope{UserID: "a/b"}, cart.ClearCart{}, []string{"user_id"}},
		{"expected version below -1", command.Envelope{UserID: "u", ExpectedVersion: ptr(int64(-2))}, cart.ClearCart{}, []string{"expected_version"}},
		{"reason too long", command.Envelope{UserID: "u", Reason: long}, cart.ClearCart{}, []string{"reason"}},
		{"principal too long", command.Envelope{UserID: "u", Principal: long}, cart.ClearCart{}, []string{"x-principal"}},
		{"quantity too big", command.Envelope{UserID: "u"}, cart.ChangeItemQuantity{ProductID: "p", Quantity: 100}, []string{"quantity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(command.Options{})
			_, err := f.h.Handle(testCtx(t), tt.env, tt.cmd)
			var ve *cart.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Handle = %v, want a *cart.ValidationError", err)
			}
			var fields []string
			for _, v := range ve.Violations {
				fields = append(fields, v.Field)
			}
			if !slices.Equal(fields, tt.wantFields) {
				t.Errorf("violations on %v, want %v", fields, tt.wantFields)
			}
			if f.spy.EventsRead() != 0 || f.spy.Appends() != 0 {
				t.Errorf("invalid request reached the store")
			}
		})
	}
}

func TestHandlePassesRuleErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{Catalog: testCatalog{"b": {CurrencyCode: "USD", Units: 1}}})
	f.do(t, command.Envelope{UserID: "u"}, addItem("a", 98))
	tests := []struct {
		name string
		cmd  cart.Command
		want error
	}{
		{"remove missing", cart.RemoveItem{ProductID: "zz"}, cart.ErrItemNotFound},
		{"change missing", cart.ChangeItemQuantity{ProductID: "zz", Quantity: 1}, cart.ErrItemNotFound},
		{"over the quantity limit", addItem("a", 2), cart.ErrQuantityLimit},
		{"other currency", cart.AddItem{ProductID: "b", Quantity: 1}, cart.ErrCurrencyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u"}, tt.cmd)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Handle = %v, want %v", err, tt.want)
			}
		})
	}
	if n := f.mem.Len("u"); n != 1 {
		t.Fatalf("stream holds %d events after rejected commands, want 1", n)
	}
}

func TestHandleExpectedVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{})
	if res := f.do(t, command.Envelope{UserID: "u", ExpectedVersion: ptr(int64(-1))}, addItem("a", 1)); res.Version != 0 {
		t.Fatalf("expected -1 on a new cart: version %d, want 0", res.Version)
	}
	if res := f.do(t, command.Envelope{UserID: "u", ExpectedVersion: ptr(int64(0))}, addItem("a", 1)); res.Version != 1 {
		t.Fatalf("expected 0 at 0: version %d, want 1", res.Version)
	}
	f.spy.Reset()
	for _, stale := range []int64{-1, 0, 2} {
		_, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u", ExpectedVersion: &stale}, addItem("a", 1))
		if !errors.Is(err, command.ErrVersionMismatch) {
			t.Fatalf("expected %d at 1 = %v, want ErrVersionMismatch", stale, err)
		}
	}
	if f.spy.Appends() != 0 || f.mem.Len("u") != 2 {
		t.Fatalf("a version mismatch wrote something: %d appends, %d events", f.spy.Appends(), f.mem.Len("u"))
	}
}

// A concurrent writer (another instance: inside one, commands on a cart
// wait for each other) slips in between load and append: the handler decides
// again on the new state; with the caller's own expected version it must
// not, and answers ErrVersionMismatch.
func TestHandleConcurrencyConflict(t *testing.T) {
	t.Parallel()
	t.Run("reloads and decides again", func(t *testing.T) {
		t.Parallel()
		f := newFixture(command.Options{})
		other := fixture{mem: f.mem, spy: f.spy, h: command.NewHandler(f.mem, priced(command.Options{}))}
		f.do(t, command.Envelope{UserID: "u"}, addItem("a", 1))
		f.spy.BeforeNextAppend(func() { other.do(t, command.Envelope{UserID: "u"}, addItem("a", 1)) })
		res := f.do(t, command.Envelope{UserID: "u"}, addItem("a", 1))
		if res.Version != 2 {
			t.Fatalf("version %d, want 2 (after the concurrent write at 1)", res.Version)
		}
		if it, _ := f.cartOf(t, "u").Item("a"); it.Quantity != 3 {
			t.Fatalf("quantity %d, want 3", it.Quantity)
		}
	})
	t.Run("the caller's expected version is not retried", func(t *testing.T) {
		t.Parallel()
		f := newFixture(command.Options{})
		other := fixture{mem: f.mem, spy: f.spy, h: command.NewHandler(f.mem, priced(command.Options{}))}
		f.do(t, command.Envelope{UserID: "u"}, addItem("a", 1))
		f.spy.BeforeNextAppend(func() { other.do(t, command.Envelope{UserID: "u"}, addItem("b", 1)) })
		_, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u", ExpectedVersion: ptr(int64(0))}, addItem("a", 1))
		if !errors.Is(err, command.ErrVersionMismatch) {
			t.Fatalf("Handle = %v, want ErrVersionMismatch", err)
		}
		if n := f.mem.Len("u"); n != 2 {
			t.Fatalf("stream holds %d events, want 2", n)
		}
	})
	t.Run("bounded attempts", func(t *testing.T) {
		t.Parallel()
		store := &alwaysConflicting{MemoryStore: commandtest.NewMemoryStore()}
		h := command.NewHandler(store, priced(command.Options{MaxAttempts: 3, Backoff: time.Microsecond}))
		_, err := h.Handle(testCtx(t), command.Envelope{UserID: "u"}, addItem("a", 1))
		if !errors.Is(err, cart.ErrConcurrencyConflict) || store.appends != 3 {
			t.Fatalf("Handle = %v after %d appends; want ErrConcurrencyConflict after 3", err, store.appends)
		}
	})
}

type alwaysConflicting struct {
	*commandtest.MemoryStore
	appends int
}

func (s *alwaysConflicting) AppendEvents(context.Context, string, int64, cart.Metadata, []cart.Event) (int64, error) {
	s.appends++
	return 0, fmt.Errorf("fake: %w", cart.ErrConcurrencyConflict)
}

func TestHandleConcurrentWriters(t *testing.T) {
	t.Parallel()
	const writers = 20
	f := newFixture(command.Options{MaxAttempts: 100, SnapshotEvery: 5})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			_, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: uuid.NewString()}, addItem("a", 1))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("writer failed: %v", err)
		}
	}
	if it, _ := f.cartOf(t, "u").Item("a"); it.Quantity != writers {
		t.Fatalf("quantity %d, want %d", it.Quantity, writers)
	}
}

func TestHandleWithoutStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	h := command.NewHandler(downStore{}, priced(command.Options{}))
	_, err := h.Handle(testCtx(t), command.Envelope{UserID: "u"}, addItem("a", 1))
	if !errors.Is(err, cart.ErrUnavailable) {
		t.Fatalf("Handle = %v, want ErrUnavailable", err)
	}
}

type downStore struct{}

var errDown = fmt.Errorf("fake: down: %w", cart.ErrUnavailable)

func (downStore) LoadEvents(context.Context, string, int64, func(int64, cart.Event, cart.Metadata) error) error {
	return errDown
}
func (downStore) AppendEvents(context.Context, string, int64, cart.Metadata, []cart.Event) (int64, error) {
	return 0, errDown
}
func (downStore) ReadSnapshot(context.Context, string) ([]byte, error) { return nil, errDown }
func (downStore) WriteSnapshot(context.Context, string, []byte) error  { return errDown }
