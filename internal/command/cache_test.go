package command_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/testing/commandtest"
)

// stores are the stores the cache is tested on: the in-memory fake and the
// EventStoreDB adapter on the stand-in. Each call opens a fresh one.
var stores = []struct {
	name string
	open func(testing.TB) command.EventStore
}{
	{"memory", func(testing.TB) command.EventStore { return commandtest.NewMemoryStore() }},
	{"standin", func(tb testing.TB) command.EventStore { s, _ := realStore(tb); return s }},
}

// instance is one command-svc replica: its own Handler (and so its own
// cache) and its own spy, over a store shared with the other replicas.
type instance struct {
	spy *commandtest.Spy
	h   *command.Handler
}

func newInstance(store command.EventStore, opts command.Options) instance {
	spy := &commandtest.Spy{Store: store}
	return instance{spy: spy, h: command.NewHandler(spy, priced(opts))}
}

func (in instance) do(tb testing.TB, user string, cmd cart.Command) command.Result {
	tb.Helper()
	res, err := in.h.Handle(testCtx(tb), command.Envelope{UserID: user, CommandID: uuid.NewString()}, cmd)
	if err != nil {
		tb.Fatalf("Handle(%s %+v): %v", cmd.Name(), cmd, err)
	}
	return res
}

// truth folds the user's stream as the store holds it.
func truth(tb testing.TB, store command.EventStore, user string) (cart.Cart, int64) {
	tb.Helper()
	var (
		c       cart.Cart
		version int64 = -1
	)
	if err := store.LoadEvents(testCtx(tb), user, 0, func(rev int64, e cart.Event, _ cart.Metadata) error {
		c, version = c.Apply(e), rev
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return c, version
}

func quantity(c cart.Cart, product string) int {
	it, _ := c.Item(product)
	return it.Quantity
}

// Given a cart the handler knows, when a command writes, then it costs one
// store call: the append, no read.
func TestCachedCommandCostsOneStoreCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cmd  cart.Command
	}{
		{"add", addItem("a", 1)},
		{"add a line", addItem("c", 1)},
		{"change quantity", cart.ChangeItemQuantity{ProductID: "a", Quantity: 7}},
		{"remove", cart.RemoveItem{ProductID: "b"}},
		{"clear", cart.ClearCart{}},
		{"checkout", cart.CheckoutCart{}},
	}
	for _, s := range stores {
		for _, tt := range tests {
			t.Run(s.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				in := newInstance(s.open(t), command.Options{SnapshotEvery: -1})
				in.do(t, "u", addItem("a", 1))
				in.do(t, "u", addItem("b", 1))
				in.spy.Reset()
				if res := in.do(t, "u", tt.cmd); res.Version != 2 {
					t.Fatalf("version %d, want 2", res.Version)
				}
				if in.spy.Calls() != 1 || in.spy.Appends() != 1 {
					t.Fatalf("%d store calls (%d appends, %d loads, %d snapshot reads), want the append alone",
						in.spy.Calls(), in.spy.Appends(), in.spy.Loads(), in.spy.SnapshotReads())
				}
			})
		}
	}
}

// Given a command the cached window holds, when it is resent, then the
// first response comes from the cache: no store call, nothing written.
func TestIdempotentRetryServedFromTheCache(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			store := s.open(t)
			in := newInstance(store, command.Options{})
			env := command.Envelope{UserID: "u", CommandID: uuid.NewString()}
			first, err := in.h.Handle(testCtx(t), env, addItem("a", 2))
			if err != nil {
				t.Fatal(err)
			}
			in.do(t, "u", addItem("b", 1)) // the cart moves on
			in.spy.Reset()
			again, err := in.h.Handle(testCtx(t), env, addItem("a", 2))
			if err != nil || !again.Duplicate || again.Version != first.Version {
				t.Fatalf("resent = %+v, %v; want the first response (version %d) as a duplicate", again, err, first.Version)
			}
			if in.spy.Calls() != 0 {
				t.Fatalf("resent command made %d store calls, want none", in.spy.Calls())
			}
			if c, v := truth(t, store, "u"); v != 1 || quantity(c, "a") != 2 {
				t.Fatalf("stream at %d with quantity %d, want 1 and 2", v, quantity(c, "a"))
			}
		})
	}
}

// Given two instances over one store, each with the cart cached, when they
// write in turn, then each conflict is resolved by reading only the events
// the other wrote (no snapshot read) and deciding again, and the stream
// holds every command exactly once.
func TestTwoInstancesReadOnlyTheTailOnConflict(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			store := s.open(t)
			a := newInstance(store, command.Options{SnapshotEvery: 3})
			b := newInstance(store, command.Options{SnapshotEvery: 3})
			a.do(t, "u", addItem("a", 1))
			b.do(t, "u", addItem("b", 1)) // b loads: a miss, then it knows the cart
			a.do(t, "u", addItem("a", 1)) // a catches up with b's first command
			want := map[string]int{"a": 2, "b": 1}
			behind := 0 // events b wrote since a last wrote
			for round := range 6 {
				// The other instance writes 1 to 3 commands meanwhile; the
				// first catches b up with a's last write.
				for range round%3 + 1 {
					b.spy.Reset()
					b.do(t, "u", addItem("b", 1))
					want["b"]++
					behind++
					if b.spy.SnapshotReads() != 0 || b.spy.EventsRead() > 1 {
						t.Fatalf("round %d: b read %d snapshots and %d events, want 0 and at most 1", round, b.spy.SnapshotReads(), b.spy.EventsRead())
					}
				}
				a.spy.Reset()
				a.do(t, "u", addItem("a", 1))
				want["a"]++
				if a.spy.SnapshotReads() != 0 || a.spy.Loads() != 1 || a.spy.EventsRead() != behind || a.spy.Appends() != 2 {
					t.Fatalf("round %d: %d snapshot reads, %d loads delivering %d events, %d appends; want 0, 1 delivering %d, 2",
						round, a.spy.SnapshotReads(), a.spy.Loads(), a.spy.EventsRead(), a.spy.Appends(), behind)
				}
				behind = 0
			}
			c, _ := truth(t, store, "u")
			for p, q := range want {
				if quantity(c, p) != q {
					t.Fatalf("quantity of %s %d, want %d", p, quantity(c, p), q)
				}
			}
		})
	}
}

// Given a cached cart that another instance changed, when a command would
// end without writing on the cached state (a rule refuses it, it changes
// nothing, the caller's expected version is ahead), then the handler reads
// what is new before answering, and answers as the stream's state says.
func TestStaleCacheIsCaughtUpBeforeAnsweringWithoutWriting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		given       []cart.Command // through the instance that caches the cart
		other       cart.Command   // then through another instance
		expected    *int64
		when        cart.Command
		wantVersion int64
		wantQty     map[string]int
	}{
		{"a rule would refuse it", []cart.Command{addItem("a", 1)}, addItem("b", 1), nil,
			cart.RemoveItem{ProductID: "b"}, 2, map[string]int{"a": 1, "b": 0}},
		{"it would change nothing", []cart.Command{addItem("a", 1)}, addItem("a", 4), nil,
			cart.ChangeItemQuantity{ProductID: "a", Quantity: 1}, 2, map[string]int{"a": 1}},
		{"it would clear an empty cart", []cart.Command{addItem("a", 1), cart.RemoveItem{ProductID: "a"}}, addItem("b", 1), nil,
			cart.ClearCart{}, 3, map[string]int{"b": 0}},
		{"the expected version is ahead", []cart.Command{addItem("a", 1)}, addItem("b", 1), ptr(int64(1)),
			addItem("a", 1), 2, map[string]int{"a": 2, "b": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := commandtest.NewMemoryStore()
			cached := newInstance(store, command.Options{})
			for _, cmd := range tt.given {
				cached.do(t, "u", cmd)
			}
			newInstance(store, command.Options{}).do(t, "u", tt.other)
			res, err := cached.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: uuid.NewString(), ExpectedVersion: tt.expected}, tt.when)
			if err != nil || res.Version != tt.wantVersion {
				t.Fatalf("Handle = %+v, %v; want version %d", res, err, tt.wantVersion)
			}
			c, v := truth(t, store, "u")
			if v != tt.wantVersion {
				t.Fatalf("stream at %d, want %d", v, tt.wantVersion)
			}
			for p, q := range tt.wantQty {
				if quantity(c, p) != q {
					t.Errorf("quantity of %s %d, want %d", p, quantity(c, p), q)
				}
			}
		})
	}
}

// Given a cached cart, when the caller's expected version is behind the
// cached version, then the command is refused at once, without a store call.
func TestStaleExpectedVersionOnACachedCart(t *testing.T) {
	t.Parallel()
	in := newInstance(commandtest.NewMemoryStore(), command.Options{})
	in.do(t, "u", addItem("a", 1))
	in.do(t, "u", addItem("a", 1))
	in.spy.Reset()
	_, err := in.h.Handle(testCtx(t), command.Envelope{UserID: "u", ExpectedVersion: ptr(int64(0))}, addItem("a", 1))
	if !errors.Is(err, command.ErrVersionMismatch) || in.spy.Calls() != 0 {
		t.Fatalf("Handle = %v after %d store calls; want ErrVersionMismatch after none", err, in.spy.Calls())
	}
}

// Given an instance that wrote a cart, when a new instance (a restart: empty
// cache) and then the old one (its cache now behind) write, then both
// continue from the stream's state.
func TestRestartContinuesFromTheStream(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			store := s.open(t)
			old := newInstance(store, command.Options{SnapshotEvery: 4})
			id := uuid.NewString()
			if _, err := old.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: id}, addItem("a", 1)); err != nil {
				t.Fatal(err)
			}
			for range 5 {
				old.do(t, "u", addItem("a", 1))
			}
			restarted := newInstance(store, command.Options{SnapshotEvery: 4})
			if res := restarted.do(t, "u", addItem("a", 1)); res.Version != 6 {
				t.Fatalf("restarted: version %d, want 6", res.Version)
			}
			if restarted.spy.SnapshotReads() != 1 {
				t.Fatalf("restarted: %d snapshot reads, want 1 (the cache starts empty)", restarted.spy.SnapshotReads())
			}
			// The first command is still recognised by the restarted instance.
			res, err := restarted.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: id}, addItem("a", 1))
			if err != nil || !res.Duplicate || res.Version != 0 {
				t.Fatalf("resent after restart = %+v, %v; want the first response", res, err)
			}
			if res := old.do(t, "u", addItem("a", 1)); res.Version != 7 {
				t.Fatalf("old instance: version %d, want 7", res.Version)
			}
			if c, v := truth(t, store, "u"); v != 7 || quantity(c, "a") != 8 {
				t.Fatalf("stream at %d with quantity %d, want 7 and 8", v, quantity(c, "a"))
			}
		})
	}
}

// Given a cache of one cart, when commands alternate between two carts,
// then every switch evicts the other cart and loads this one, and both
// carts end exactly right.
func TestEvictionKeepsCartsCorrect(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			store := s.open(t)
			in := newInstance(store, command.Options{CacheSize: 1, SnapshotEvery: 3})
			ids := map[string]string{}
			for i := range 10 {
				for _, user := range []string{"u", "v"} {
					in.spy.Reset()
					env := command.Envelope{UserID: user, CommandID: uuid.NewString()}
					if i == 0 {
						ids[user] = env.CommandID
					}
					res, err := in.h.Handle(testCtx(t), env, addItem("a", 1))
					if err != nil || res.Version != int64(i) {
						t.Fatalf("%s command %d: %+v, %v; want version %d", user, i, res, err, i)
					}
					if in.spy.SnapshotReads() != 1 {
						t.Fatalf("%s command %d: %d snapshot reads, want 1 (evicted by the other cart)", user, i, in.spy.SnapshotReads())
					}
				}
			}
			// The cached cart (v) answers a resend without a call.
			in.spy.Reset()
			if res, err := in.h.Handle(testCtx(t), command.Envelope{UserID: "v", CommandID: ids["v"]}, addItem("a", 1)); err != nil || !res.Duplicate || in.spy.Calls() != 0 {
				t.Fatalf("resend on the cached cart = %+v, %v with %d store calls; want a duplicate and none", res, err, in.spy.Calls())
			}
			for _, user := range []string{"u", "v"} {
				if c, v := truth(t, store, user); v != 9 || quantity(c, "a") != 10 {
					t.Fatalf("%s: stream at %d with quantity %d, want 9 and 10", user, v, quantity(c, "a"))
				}
			}
		})
	}
}

// Given an append that may or may not have written (its response was lost),
// when the next command comes, then the cart is loaded again rather than
// decided on the cache, which cannot know.
func TestDoubtfulAppendEvictsTheCart(t *testing.T) {
	t.Parallel()
	in := newInstance(commandtest.NewMemoryStore(), command.Options{})
	in.do(t, "u", addItem("a", 1))
	in.spy.LoseAppendResponses(1)
	if _, err := in.h.Handle(testCtx(t), command.Envelope{UserID: "u", CommandID: uuid.NewString()}, addItem("a", 1)); !errors.Is(err, commandtest.ErrResponseLost) {
		t.Fatalf("Handle = %v, want the lost response", err)
	}
	in.spy.Reset()
	if res := in.do(t, "u", addItem("a", 1)); res.Version != 2 {
		t.Fatalf("version %d, want 2 (the lost append was written)", res.Version)
	}
	if in.spy.SnapshotReads() != 1 || in.spy.Appends() != 1 {
		t.Fatalf("%d snapshot reads, %d appends; want a load (1) and one append", in.spy.SnapshotReads(), in.spy.Appends())
	}
}

// failingLoads fails the next LoadEvents as an undecodable event would.
type failingLoads struct {
	command.EventStore
	mu   sync.Mutex
	fail bool
}

func (s *failingLoads) failNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = true
}

func (s *failingLoads) LoadEvents(ctx context.Context, userID string, from int64, fn func(int64, cart.Event, cart.Metadata) error) error {
	s.mu.Lock()
	fail := s.fail
	s.fail = false
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("fake: revision %d: %w", from, &cart.DecodeError{Type: "Nonsense", Err: cart.ErrUnknownEventType})
	}
	return s.EventStore.LoadEvents(ctx, userID, from, fn)
}

// Given a cached cart behind the stream, when catching up fails (an event
// that does not decode), then the command fails and the cart is dropped
// from the cache: the next command loads it from scratch.
func TestFailedCatchUpEvictsTheCart(t *testing.T) {
	t.Parallel()
	mem := commandtest.NewMemoryStore()
	loads := &failingLoads{EventStore: mem}
	in := newInstance(loads, command.Options{})
	other := newInstance(mem, command.Options{})
	in.do(t, "u", addItem("a", 1))
	other.do(t, "u", addItem("a", 1))
	loads.failNext()
	var de *cart.DecodeError
	if _, err := in.h.Handle(testCtx(t), command.Envelope{UserID: "u"}, addItem("a", 1)); !errors.As(err, &de) {
		t.Fatalf("Handle = %v, want the decode error", err)
	}
	in.spy.Reset()
	if res := in.do(t, "u", addItem("a", 1)); res.Version != 2 {
		t.Fatalf("version %d, want 2", res.Version)
	}
	if in.spy.SnapshotReads() != 1 {
		t.Fatalf("%d snapshot reads, want 1: the cart was not evicted", in.spy.SnapshotReads())
	}
	if c, _ := truth(t, mem, "u"); quantity(c, "a") != 3 {
		t.Fatalf("quantity %d, want 3", quantity(c, "a"))
	}
}

// Given one instance, when 16 callers send commands to one cart at once,
// then they queue for the cart: no caller meets a concurrency conflict,
// every append succeeds the first time, and the quantities are exact.
func TestHotCartOneInstance(t *testing.T) {
	t.Parallel()
	const callers, each = 16, 5
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			store := s.open(t)
			in := newInstance(store, command.Options{SnapshotEvery: 7})
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					for range each {
						_, err := in.h.Handle(testCtx(t), command.Envelope{UserID: "hot", CommandID: uuid.NewString()}, addItem(fmt.Sprintf("p%d", i), 1))
						if err != nil {
							errs[i] = err
							return
						}
					}
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("caller %d: %v (conflict: %v)", i, err, errors.Is(err, cart.ErrConcurrencyConflict))
				}
			}
			if in.spy.Appends() != callers*each {
				t.Fatalf("%d appends for %d commands: some conflicted", in.spy.Appends(), callers*each)
			}
			c, v := truth(t, store, "hot")
			if v != callers*each-1 {
				t.Fatalf("stream at version %d, want %d", v, callers*each-1)
			}
			for i := range callers {
				if q := quantity(c, fmt.Sprintf("p%d", i)); q != each {
					t.Fatalf("quantity of p%d %d, want %d", i, q, each)
				}
			}
		})
	}
}
