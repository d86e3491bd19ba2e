package eventstore

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/dev/standin"
)

// deadAddr is a loopback address nothing listens on (until a test starts a
// server there).
func deadAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// serveAt starts a stand-in on addr, stopped with the test.
func serveAt(tb testing.TB, addr string) {
	tb.Helper()
	srv, err := standin.New(standin.Config{Listen: addr})
	if err != nil {
		tb.Fatalf("start stand-in on %s: %v", addr, err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	tb.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
}

// While the store is down, concurrent calls do not queue inside the client:
// one probes, the others fail fast with ErrUnavailable (the probe too,
// after probeTimeout, or at its caller's deadline if that comes first).
// When the store comes up, calls work again.
func TestCallsDuringAnOutageFailFast(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for calls to time out against a dead address")
	}
	t.Parallel()
	addr := deadAddr(t)
	s := openAt(t, "esdb://"+addr+"?tls=false")

	const callers = 20
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, errs[i] = s.ReadStream(ctx, "u", 0, 0)
		})
	}
	wg.Wait()
	timedOut := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			timedOut++
		case errors.Is(err, cart.ErrUnavailable):
		default:
			t.Errorf("caller %d: %v; want ErrUnavailable or its deadline", i, err)
		}
	}
	if timedOut > 1 {
		t.Errorf("%d callers waited inside the client; want at most the one probe", timedOut)
	}

	serveAt(t, addr)
	eventually(t, func() error {
		_, err := s.ReadStream(testCtx(t), "u", 0, 0)
		return err
	})
}

// Closing the Store while a call is stuck in the client's node discovery
// must not panic that call (the client itself would: it closes a channel
// the call sends on).
func TestCloseWithACallInFlight(t *testing.T) {
	t.Parallel()
	addr := deadAddr(t)
	s, err := Open(context.Background(), "esdb://"+addr+"?tls=false", nil)
	if err != nil {
		t.Fatal(err)
	}
	pinged := make(chan error, 1)
	go func() { pinged <- s.Ping(context.Background()) }()
	eventually(t, func() error { // the ping is the probe, inside the client
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.probing == nil {
			return errors.New("no call in flight yet")
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.ReadStream(testCtx(t), "u", 0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadStream after Close = %v, want ErrClosed", err)
	}
	if err := <-pinged; !errors.Is(err, cart.ErrUnavailable) {
		t.Errorf("Ping in flight at Close = %v, want ErrUnavailable", err)
	}
	// Let the stuck discovery finish so that the client can close for good.
	serveAt(t, addr)
	eventually(t, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.cur.users != 0 {
			return errors.New("the abandoned call still holds the client")
		}
		return nil
	})
}

// While the store is down, the probe itself does not wait out a long
// caller deadline: it answers ErrUnavailable once probeTimeout has passed,
// so that an API call fails UNAVAILABLE (retryable) instead of timing out.
func TestTheProbeAnswersUnavailableBeforeALongDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the probe's bound against a dead address")
	}
	t.Parallel()
	s := openAt(t, "esdb://"+deadAddr(t)+"?tls=false")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.ReadStream(ctx, "u", 0, 0)
	if !errors.Is(err, cart.ErrUnavailable) {
		t.Fatalf("ReadStream with the store down = %v; want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 3*probeTimeout {
		t.Fatalf("the probe answered after %v; want about %v, well before the caller's 30 s", took, probeTimeout)
	}
	if _, err := s.AppendEvents(ctx, "u", -1, cart.Metadata{CommandID: "c"}, []cart.Event{cart.ItemAdded{ProductID: "p", Quantity: 1, UnitPrice: cart.Money{CurrencyCode: "EUR", Units: 1}}}); !errors.Is(err, cart.ErrUnavailable) {
		t.Fatalf("AppendEvents with the store down = %v; want ErrUnavailable", err)
	}
}
