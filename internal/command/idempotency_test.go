package command_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/testing/commandtest"
)

func TestResentCommandGetsTheFirstResponse(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{})
	id := uuid.NewString()
	env := command.Envelope{UserID: "u", CommandID: id}
	first := f.do(t, env, addItem("a", 1))
	f.do(t, command.Envelope{UserID: "u"}, addItem("b", 1)) // the cart moves on

	f.spy.Reset()
	again := f.do(t, env, addItem("a", 1))
	if again.Version != first.Version || !again.Duplicate {
		t.Fatalf("resent: %+v, want version %d marked duplicate", again, first.Version)
	}
	// Even with the expected version of the first attempt, which is stale now.
	stale := f.do(t, command.Envelope{UserID: "u", CommandID: id, ExpectedVersion: ptr(int64(-1))}, addItem("a", 1))
	if stale.Version != first.Version || !stale.Duplicate {
		t.Fatalf("resent with its original expected version: %+v, want version %d", stale, first.Version)
	}
	if f.spy.Appends() != 0 || f.mem.Len("u") != 2 {
		t.Fatalf("resent command wrote: %d appends, %d events", f.spy.Appends(), f.mem.Len("u"))
	}
}

func TestReusedCommandIDForAnotherCommand(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{})
	id := uuid.NewString()
	f.do(t, command.Envelope{UserID: "u", CommandID: id}, addItem("a", 1))
	tests := []struct {
		name string
		cmd  cart.Command
	}{
		{"other quantity", addItem("a", 2)},
		{"other price", cart.AddItem{ProductID: "a", Quantity: 1, ShownPrice: ptr(eur(4))}},
		{"other command", cart.RemoveItem{ProductID: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: id}, tt.cmd)
			if !errors.Is(err, command.ErrCommandIDReused) {
				t.Fatalf("Handle = %v, want ErrCommandIDReused", err)
			}
		})
	}
	if n := f.mem.Len("u"); n != 1 {
		t.Fatalf("stream holds %d events, want 1", n)
	}
	// The window is per cart: another user may use the same ID.
	if res := f.do(t, command.Envelope{UserID: "v", CommandID: id}, addItem("a", 2)); res.Duplicate || res.Version != 0 {
		t.Fatalf("same ID on another cart: %+v, want a new command", res)
	}
}

// The first attempt's append succeeded but its response was lost: the
// caller sees an error and resends; the resend must not add the item again.
func TestResendAfterLostAppendResponse(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{})
	f.do(t, command.Envelope{UserID: "u"}, addItem("a", 1))
	id := uuid.NewString()
	env := command.Envelope{UserID: "u", CommandID: id}

	f.spy.LoseAppendResponses(1)
	if _, err := f.h.Handle(testCtx(t), env, addItem("a", 1)); !errors.Is(err, commandtest.ErrResponseLost) || !errors.Is(err, cart.ErrUnavailable) {
		t.Fatalf("first attempt = %v, want the lost response (unavailable)", err)
	}
	if n := f.mem.Len("u"); n != 2 {
		t.Fatalf("the lost attempt was not written: %d events", n)
	}
	res := f.do(t, env, addItem("a", 1))
	if res.Version != 1 || !res.Duplicate {
		t.Fatalf("resend = %+v, want version 1 (the first attempt's) as a duplicate", res)
	}
	if it, _ := f.cartOf(t, "u").Item("a"); it.Quantity != 2 || f.mem.Len("u") != 2 {
		t.Fatalf("quantity %d with %d events, want 2 and 2", it.Quantity, f.mem.Len("u"))
	}
}

func TestResentCheckoutReturnsWhatWasBought(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{})
	f.do(t, command.Envelope{UserID: "u"}, addItem("a", 2))
	id := uuid.NewString()
	f.spy.LoseAppendResponses(1)
	if _, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: id}, cart.CheckoutCart{}); err == nil {
		t.Fatal("first checkout attempt succeeded; the response should have been lost")
	}
	f.do(t, command.Envelope{UserID: "u"}, addItem("b", 1)) // a new cart starts

	res := f.do(t, command.Envelope{UserID: "u", CommandID: id}, cart.CheckoutCart{})
	if !res.Duplicate || res.Version != 1 || res.Checkout == nil {
		t.Fatalf("resent checkout = %+v, want the first attempt's at version 1", res)
	}
	if co := res.Checkout; co.CheckoutID != command.CheckoutID(id) || len(co.Items) != 1 || co.Items[0].ProductID != "a" || co.Total != eur(6) {
		t.Fatalf("resent checkout bought %+v, want 2 × a for 6 EUR under the derived ID", co)
	}
	if it, ok := f.cartOf(t, "u").Item("b"); !ok || it.Quantity != 1 {
		t.Fatal("the new cart was checked out again")
	}
}

func TestResendIsRecognisedAfterRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{})
	id := uuid.NewString()
	first := f.do(t, command.Envelope{UserID: "u", CommandID: id}, addItem("a", 1))
	restarted := command.NewHandler(f.mem, priced(command.Options{}))
	res, err := restarted.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: id}, addItem("a", 1))
	if err != nil || !res.Duplicate || res.Version != first.Version {
		t.Fatalf("after restart: %+v, %v; want the first response", res, err)
	}
}

func TestWindowForgetsOldCommands(t *testing.T) {
	t.Parallel()
	const window = 3
	f := newFixture(command.Options{WindowSize: window})
	old := uuid.NewString()
	f.do(t, command.Envelope{UserID: "u", CommandID: old}, addItem("a", 1))
	for range window - 1 {
		f.do(t, command.Envelope{UserID: "u", CommandID: uuid.NewString()}, addItem("b", 1))
	}
	if res := f.do(t, command.Envelope{UserID: "u", CommandID: old}, addItem("a", 1)); !res.Duplicate {
		t.Fatalf("command %d commands back not recognised: %+v", window, res)
	}
	f.do(t, command.Envelope{UserID: "u", CommandID: uuid.NewString()}, addItem("b", 1))
	if res := f.do(t, command.Envelope{UserID: "u", CommandID: old}, addItem("a", 1)); res.Duplicate || res.Version != 4 {
		t.Fatalf("command %d commands back: %+v; want it decided again as new (version 4)", window+1, res)
	}
}

// Commands that wrote nothing leave no trace: a resend is decided again.
func TestResentNoOpAnswersTheCurrentVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{})
	id := uuid.NewString()
	if res := f.do(t, command.Envelope{UserID: "u", CommandID: id}, cart.ClearCart{}); res.Version != -1 {
		t.Fatalf("clearing a new cart: version %d, want -1", res.Version)
	}
	f.do(t, command.Envelope{UserID: "u"}, addItem("a", 1))
	if res := f.do(t, command.Envelope{UserID: "u", CommandID: id}, cart.ClearCart{}); res.Duplicate || res.Version != 1 {
		t.Fatalf("resent no-op: %+v; want decided again (version 1)", res)
	}
}

// Two identical commands race: one writes, the other sees it (through the
// store's idempotence or after a conflict and reload) and answers the same.
func TestIdenticalCommandsRacing(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{MaxAttempts: 50})
	f.do(t, command.Envelope{UserID: "u"}, addItem("a", 1))
	id := uuid.NewString()
	const racers = 8
	results := make([]command.Result, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			results[i], errs[i] = f.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: id}, addItem("a", 1))
		})
	}
	wg.Wait()
	for i := range racers {
		if errs[i] != nil || results[i].Version != 1 {
			t.Fatalf("racer %d: %+v, %v; want version 1", i, results[i], errs[i])
		}
	}
	if it, _ := f.cartOf(t, "u").Item("a"); it.Quantity != 2 || f.mem.Len("u") != 2 {
		t.Fatalf("quantity %d with %d events; want the command applied once", it.Quantity, f.mem.Len("u"))
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	base := command.Fingerprint("u", addItem("a", 1))
	if len(base) != 32 {
		t.Fatalf("fingerprint %q: want 32 hex digits", base)
	}
	if command.Fingerprint("u", addItem("a", 1)) != base {
		t.Error("fingerprint not deterministic")
	}
	for name, other := range map[string]string{
		"user":     command.Fingerprint("v", addItem("a", 1)),
		"payload":  command.Fingerprint("u", addItem("a", 2)),
		"command":  command.Fingerprint("u", cart.RemoveItem{ProductID: "a"}),
		"checkout": command.Fingerprint("u", cart.CheckoutCart{}),
	} {
		if other == base {
			t.Errorf("fingerprint ignores the %s", name)
		}
	}
	if command.Fingerprint("u", cart.CheckoutCart{CheckoutID: "x"}) != command.Fingerprint("u", cart.CheckoutCart{CheckoutID: "y"}) {
		t.Error("checkout fingerprint depends on the derived checkout ID")
	}
	first, again := command.CheckoutID("c1"), command.CheckoutID("c1")
	if first != again || first == command.CheckoutID("c2") {
		t.Error("checkout IDs are not derived from command IDs")
	}
}
