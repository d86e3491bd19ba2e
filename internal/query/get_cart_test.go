package query

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/projection"
)

// fakeCarts is a read model in memory. onRead, if set, runs after each read
// with the read's number (1-based), outside the lock.
type fakeCarts struct {
	mu     sync.Mutex
	docs   map[string]projection.CartDoc
	err    error
	reads  int
	onRead func(n int)
}

func (f *fakeCarts) GetCart(_ context.Context, userID string) (projection.CartDoc, bool, error) {
	f.mu.Lock()
	f.reads++
	d, ok := f.docs[userID]
	n, err, hook := f.reads, f.err, f.onRead
	f.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return d, ok, err
}

func (f *fakeCarts) set(d projection.CartDoc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.docs[d.UserID] = d
}

// countingWaiter wraps the real notifier and counts open registrations, to
// show that GetCart releases every one.
type countingWaiter struct {
	*projection.Notifier
	mu   sync.Mutex
	open int
}

func (w *countingWaiter) Wait(userID string, min int64) (*projection.Wake, func()) {
	ch, cancel := w.Notifier.Wait(userID, min)
	w.mu.Lock()
	w.open++
	w.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			cancel()
			w.mu.Lock()
			w.open--
			w.mu.Unlock()
		})
	}
}

func (w *countingWaiter) openCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.open
}

func eur(units int64, nanos int32) cart.Money {
	return cart.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
}

func docAt(user string, version int64, stale bool) projection.CartDoc {
	return projection.CartDoc{
		UserID: user,
		Cart: cart.Cart{Items: []cart.Item{
			{ProductID: "a", Quantity: 3, UnitPrice: eur(1, 500_000_000)},
			{ProductID: "b", Quantity: 1, UnitPrice: eur(10, 0)},
		}},
		Version:   version,
		UpdatedAt: time.Date(2025, 1, 1, 0, 0, int(version%60), 0, time.UTC),
		Stale:     stale,
	}
}

func newService(docs ...projection.CartDoc) (*Service, *fakeCarts, *countingWaiter) {
	f := &fakeCarts{docs: map[string]projection.CartDoc{}}
	for _, d := range docs {
		f.docs[d.UserID] = d
	}
	w := &countingWaiter{Notifier: projection.NewNotifier()}
	return &Service{Carts: f, Waiter: w, MaxWait: time.Hour}, f, w
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGetCartShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		docs []projection.CartDoc
		user string
		want CartView
	}{
		{
			name: "unknown user has the empty cart at -1",
			user: "nobody",
			want: CartView{UserID: "nobody", Version: -1},
		},
		{
			name: "lines with totals",
			docs: []projection.CartDoc{docAt("u1", 4, false)},
			user: "u1",
			want: CartView{
				UserID: "u1",
				Lines: []Line{
					{ProductID: "a", Quantity: 3, UnitPrice: eur(1, 500_000_000), LineTotal: eur(4, 500_000_000)},
					{ProductID: "b", Quantity: 1, UnitPrice: eur(10, 0), LineTotal: eur(10, 0)},
				},
				Total: eur(14, 500_000_000), ItemCount: 4, Version: 4,
				UpdateTime: time.Date(2025, 1, 1, 0, 0, 4, 0, time.UTC),
			},
		},
		{
			name: "stale cart says so",
			docs: []projection.CartDoc{{UserID: "u2", Version: 0, Stale: true, UpdatedAt: time.Unix(5, 0)}},
			user: "u2",
			want: CartView{UserID: "u2", Version: 0, Stale: true, UpdateTime: time.Unix(5, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _, _ := newService(tt.docs...)
			got, err := s.GetCart(testCtx(t), tt.user, -1)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("GetCart = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestGetCartMinVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		start      projection.CartDoc
		min        int64
		noWaiter   bool
		maxWait    time.Duration
		ctxTimeout time.Duration
		// onRead may change the read model (and notify) after the n-th read.
		onRead      func(f *fakeCarts, w *countingWaiter, n int)
		wantVersion int64
		wantErr     error
		wantReads   int // 0: not checked
	}{
		{name: "already there", start: docAt("u", 5, false), min: 5, wantVersion: 5},
		{name: "-1 never waits for an unknown cart", start: docAt("other", 0, false), min: -1, wantVersion: -1},
		{
			name: "waits for the projector's notification", start: docAt("u", 2, false), min: 4,
			onRead: func(f *fakeCarts, w *countingWaiter, n int) {
				if n == 1 { // the read after registering: the wait is set up
					go func() {
						f.set(docAt("u", 4, false))
						w.WakeAll() // no document: it reads again
					}()
				}
			},
			wantVersion: 4, wantReads: 2,
		},
		{
			name: "the projector's document answers without a read", start: docAt("u", 2, false), min: 4,
			onRead: func(f *fakeCarts, w *countingWaiter, n int) {
				if n == 1 {
					go func() {
						d := docAt("u", 4, false)
						f.set(d)
						w.NotifyDoc(d)
					}()
				}
			},
			wantVersion: 4, wantReads: 1,
		},
		{
			name: "a flush between registering and the wait is not missed", start: docAt("u", 2, false), min: 3,
			onRead: func(f *fakeCarts, w *countingWaiter, n int) {
				if n == 1 { // stored and announced before the wait begins
					f.set(docAt("u", 3, false))
					w.WakeAll()
				}
			},
			wantVersion: 3, wantReads: 2,
		},
		{
			name: "woken while still behind waits again", start: docAt("u", 2, false), min: 6,
			onRead: func(f *fakeCarts, w *countingWaiter, n int) {
				switch n {
				case 1:
					// Woken (a collection switch), but the read still sees
					// 5: wait on.
					go func() { f.set(docAt("u", 5, false)); w.WakeAll() }()
				case 2:
					go func() { f.set(docAt("u", 7, false)); w.WakeAll() }()
				}
			},
			wantVersion: 7, wantReads: 3,
		},
		{name: "server cap", start: docAt("u", 2, false), min: 3, maxWait: time.Millisecond, wantErr: ErrNotReady},
		{name: "caller deadline before the cap", start: docAt("u", 2, false), min: 3, ctxTimeout: 50 * time.Millisecond, wantErr: ErrNotReady},
		{name: "stale cart below min fails at once", start: docAt("u", 2, true), min: 3, wantErr: ErrNotReady},
		{name: "stale cart at min is returned", start: docAt("u", 3, true), min: 3, wantVersion: 3},
		{name: "no waiter", start: docAt("u", 2, false), min: 3, noWaiter: true, wantErr: ErrNotReady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, f, w := newService(tt.start)
			if tt.maxWait > 0 {
				s.MaxWait = tt.maxWait
			}
			if tt.noWaiter {
				s.Waiter = nil
			}
			if tt.onRead != nil {
				f.onRead = func(n int) { tt.onRead(f, w, n) }
			}
			ctx := testCtx(t)
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			got, err := s.GetCart(ctx, "u", tt.min)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("GetCart = %+v, %v; want %v", got, err, tt.wantErr)
				}
			} else if err != nil || got.Version != tt.wantVersion {
				t.Fatalf("GetCart = version %d, %v; want version %d", got.Version, err, tt.wantVersion)
			}
			if n := w.openCount(); n != 0 {
				t.Errorf("%d waits left registered", n)
			}
			f.mu.Lock()
			reads := f.reads
			f.mu.Unlock()
			if tt.wantReads != 0 && reads != tt.wantReads {
				t.Errorf("%d reads of the read model, want %d", reads, tt.wantReads)
			}
		})
	}
}

func TestGetCartStoreError(t *testing.T) {
	t.Parallel()
	s, f, _ := newService()
	f.err = fmt.Errorf("boom: %w", cart.ErrUnavailable)
	if _, err := s.GetCart(testCtx(t), "u", -1); !errors.Is(err, cart.ErrUnavailable) {
		t.Errorf("GetCart = %v, want cart.ErrUnavailable", err)
	}
}

func TestGetCartCallerCancels(t *testing.T) {
	t.Parallel()
	s, f, _ := newService(docAt("u", 1, false))
	ctx, cancel := context.WithCancel(testCtx(t))
	f.onRead = func(n int) {
		if n == 1 {
			cancel()
		}
	}
	if _, err := s.GetCart(ctx, "u", 9); !errors.Is(err, context.Canceled) {
		t.Errorf("GetCart = %v, want context.Canceled", err)
	}
}

// Given a read of the read model that is slow (a loaded store), when the
// projector announces the version meanwhile, then GetCart answers with the
// announced document without waiting for the read.
func TestGetCartDoesNotWaitForASlowReadOnceAnnounced(t *testing.T) {
	t.Parallel()
	s, f, w := newService(docAt("u", 2, false))
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.onRead = func(n int) {
		if n == 1 {
			w.NotifyDoc(docAt("u", 4, false))
			<-release // the read answers only when the test is over
		}
	}
	done := make(chan error, 1)
	var got CartView
	go func() {
		var err error
		got, err = s.GetCart(testCtx(t), "u", 4)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil || got.Version != 4 {
			t.Fatalf("GetCart = version %d, %v; want the announced 4", got.Version, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GetCart waited for the slow read although the version was announced")
	}
}
