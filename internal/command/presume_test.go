package command_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/testing/commandtest"
)

// presumeNew are the options of command-svc: a cart that is not cached is
// decided as a new one, and the append's expected revision tells.
var presumeNew = command.Options{PresumeNew: true, SnapshotEvery: 4}

// Given a cart nobody wrote, when the first command adds to it, then it
// costs one store call, the append, and the cart is right.
func TestPresumedNewCartCostsOneStoreCall(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			store := s.open(t)
			in := newInstance(store, presumeNew)
			if res := in.do(t, "u", addItem("a", 2)); res.Version != 0 {
				t.Fatalf("version %d, want 0", res.Version)
			}
			if in.spy.Calls() != 1 || in.spy.Appends() != 1 {
				t.Fatalf("%d store calls (%d appends), want the one append", in.spy.Calls(), in.spy.Appends())
			}
			if c, v := truth(t, store, "u"); v != 0 || quantity(c, "a") != 2 {
				t.Fatalf("stream at %d with quantity %d, want 0 and 2", v, quantity(c, "a"))
			}
		})
	}
}

// Given a cart another instance wrote (or this one before a restart), when
// an instance that does not have it cached takes a command, then the
// presumption is refused by the store, the cart is loaded, and the command
// is decided on the real cart: never on the empty one it presumed.
func TestPresumedNewCartThatExists(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cmd  cart.Command
		// wantCalls: store calls of the instance that did not know the cart.
		wantCalls int
		wantErr   error
		check     func(t *testing.T, c cart.Cart)
	}{
		{
			// refused append, snapshot read, events read, append
			name: "add to an existing line", cmd: addItem("a", 1), wantCalls: 4,
			check: func(t *testing.T, c cart.Cart) {
				if quantity(c, "a") != 6 {
					t.Fatalf("quantity of a %d, want 6", quantity(c, "a"))
				}
			},
		},
		{
			// a new cart would refuse it: load, then decide and append
			name: "remove a line", cmd: cart.RemoveItem{ProductID: "b"}, wantCalls: 3,
			check: func(t *testing.T, c cart.Cart) {
				if _, ok := c.Item("b"); ok {
					t.Fatal("b still in the cart")
				}
			},
		},
		{
			// a new cart would ignore it: load, then decide and append
			name: "clear", cmd: cart.ClearCart{}, wantCalls: 3,
			check: func(t *testing.T, c cart.Cart) {
				if len(c.Items) != 0 {
					t.Fatalf("%d lines left", len(c.Items))
				}
			},
		},
		{
			// the refusal comes from the real cart: load, decide, no append
			name: "remove what is not there", cmd: cart.RemoveItem{ProductID: "z"}, wantCalls: 2,
			wantErr: cart.ErrItemNotFound,
		},
	}
	for _, s := range stores {
		for _, tt := range tests {
			t.Run(s.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				store := s.open(t)
				writer := newInstance(store, presumeNew)
				for range 5 {
					writer.do(t, "u", addItem("a", 1))
				}
				writer.do(t, "u", addItem("b", 1))
				other := newInstance(store, presumeNew)
				_, err := other.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: uuid.NewString()}, tt.cmd)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Handle = %v, want %v", err, tt.wantErr)
				}
				if other.spy.Calls() != tt.wantCalls {
					t.Fatalf("%d store calls, want %d", other.spy.Calls(), tt.wantCalls)
				}
				c, v := truth(t, store, "u")
				if tt.check == nil {
					if v != 5 {
						t.Fatalf("stream at %d, want 5: nothing written", v)
					}
					return
				}
				if v != 6 {
					t.Fatalf("stream at %d, want 6", v)
				}
				tt.check(t, c)
				// The cart is now cached right: the next command reads
				// nothing and appends once (a snapshot may fall due).
				other.spy.Reset()
				other.do(t, "u", addItem("c", 1))
				if other.spy.Loads() != 0 || other.spy.SnapshotReads() != 0 || other.spy.Appends() != 1 {
					t.Fatalf("next command: %d loads, %d snapshot reads, %d appends; want only one append",
						other.spy.Loads(), other.spy.SnapshotReads(), other.spy.Appends())
				}
			})
		}
	}
}

// Given a cart whose first command was written before a restart, when that
// command is resent to an instance that does not have the cart cached,
// then the first response is answered and nothing is written twice,
// whether the resend matches the stream's start (the store recognises the
// batch) or not (the cart is loaded and its window recognises the ID).
func TestPresumedNewResendIsRecognised(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			store := s.open(t)
			first := newInstance(store, presumeNew)
			id := uuid.NewString()
			if _, err := first.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: id}, addItem("a", 1)); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				first.do(t, "u", addItem("a", 1))
			}
			restarted := newInstance(store, presumeNew)
			res, err := restarted.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: id}, addItem("a", 1))
			if err != nil || res.Version != 0 {
				t.Fatalf("resent = %+v, %v; want the first response (version 0)", res, err)
			}
			if _, v := truth(t, store, "u"); v != 3 {
				t.Fatalf("stream at %d, want 3: the resend wrote", v)
			}
			// Whatever the resend left cached, the next command lands on
			// the stream's real state.
			if res := restarted.do(t, "u", addItem("a", 1)); res.Version != 4 {
				t.Fatalf("next command: version %d, want 4", res.Version)
			}
			if c, v := truth(t, store, "u"); v != 4 || quantity(c, "a") != 5 {
				t.Fatalf("stream at %d with quantity %d, want 4 and 5", v, quantity(c, "a"))
			}
		})
	}
}

// Given a caller's expected version on a cart that is not cached, then the
// presumption never answers for the truth: a version above -1 loads the
// cart and compares, and -1 ("no events yet") on a cart that exists is
// refused by the store, then found stale once the cart is loaded.
func TestPresumedNewRespectsExpectedVersion(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			store := s.open(t)
			writer := newInstance(store, presumeNew)
			writer.do(t, "u", addItem("a", 1))
			writer.do(t, "u", addItem("a", 1))
			other := newInstance(store, presumeNew)
			_, err := other.h.Handle(testCtx(t), command.Envelope{UserID: "u", ExpectedVersion: ptr(int64(0))}, addItem("a", 1))
			if !errors.Is(err, command.ErrVersionMismatch) {
				t.Fatalf("stale expected version: %v, want ErrVersionMismatch", err)
			}
			third := newInstance(store, presumeNew)
			if _, err := third.h.Handle(testCtx(t), command.Envelope{UserID: "u", ExpectedVersion: ptr(int64(-1))}, addItem("a", 1)); !errors.Is(err, command.ErrVersionMismatch) {
				t.Fatalf("expected version -1 on a cart that exists: %v, want ErrVersionMismatch", err)
			}
			res, err := other.h.Handle(testCtx(t), command.Envelope{UserID: "u", ExpectedVersion: ptr(int64(1))}, addItem("a", 1))
			if err != nil || res.Version != 2 {
				t.Fatalf("current expected version: %+v, %v; want version 2", res, err)
			}
			fresh := newInstance(store, presumeNew)
			if _, err := fresh.h.Handle(testCtx(t), command.Envelope{UserID: "new", ExpectedVersion: ptr(int64(0))}, addItem("a", 1)); !errors.Is(err, command.ErrVersionMismatch) {
				t.Fatalf("expected version 0 on a new cart: %v, want ErrVersionMismatch", err)
			}
			if fresh.spy.Appends() != 0 {
				t.Fatalf("%d appends on a mismatch, want 0", fresh.spy.Appends())
			}
			if res, err := fresh.h.Handle(testCtx(t), command.Envelope{UserID: "new2", ExpectedVersion: ptr(int64(-1))}, addItem("a", 1)); err != nil || res.Version != 0 {
				t.Fatalf("expected version -1 on a new cart: %+v, %v; want version 0", res, err)
			}
			if _, v := truth(t, store, "u"); v != 2 {
				t.Fatalf("stream u at %d, want 2", v)
			}
		})
	}
}

// Given a cart that exists but is not cached, when the catalog fails while
// a command is decided on the presumed-new cart, then nothing is written
// and the presumption is not kept: the next command loads the cart from
// its snapshot as any uncached cart does, instead of reading its whole
// stream as if an empty cart had been cached.
func TestPresumedNewCartIsNotCachedAfterACatalogOutage(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			store := s.open(t)
			writer := newInstance(store, presumeNew)
			for range 6 {
				writer.do(t, "u", addItem("a", 1))
			}
			cat := &spyCatalog{Catalog: testCatalog{}, err: fmt.Errorf("catalog down: %w", cart.ErrUnavailable)}
			opts := presumeNew
			opts.Catalog = cat
			spy := &commandtest.Spy{Store: store}
			h := command.NewHandler(spy, opts)
			if _, err := h.Handle(testCtx(t), command.Envelope{UserID: "u"}, addItem("a", 1)); !errors.Is(err, cart.ErrUnavailable) {
				t.Fatalf("Handle during the outage = %v, want ErrUnavailable", err)
			}
			cat.mu.Lock()
			cat.err = nil
			cat.mu.Unlock()
			spy.Reset()
			res, err := h.Handle(testCtx(t), command.Envelope{UserID: "u"}, addItem("a", 1))
			if err != nil || res.Version != 6 {
				t.Fatalf("Handle after the outage = %+v, %v; want version 6", res, err)
			}
			if spy.SnapshotReads() != 1 || spy.EventsRead() > 3 {
				t.Fatalf("%d snapshot reads, %d events read; want the cart loaded from its snapshot (a few events after it)",
					spy.SnapshotReads(), spy.EventsRead())
			}
			if c, v := truth(t, store, "u"); v != 6 || quantity(c, "a") != 7 {
				t.Fatalf("stream at %d with quantity %d, want 6 and 7", v, quantity(c, "a"))
			}
		})
	}
}
