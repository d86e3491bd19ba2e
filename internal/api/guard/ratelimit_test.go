package guard

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type principalKey struct{}

func withPrincipal(ctx context.Context, p string) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principalOf(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}

const (
	commandMethod = "/cart.v1.CartCommandService/AddItem"
	queryMethod   = "/cart.v1.CartQueryService/GetCart"
)

// clock is a hand-driven time source for the limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLimiter(t *testing.T, cfg RateLimit) (*Limiter, *clock) {
	t.Helper()
	l, err := NewLimiter(cfg, principalOf, InService("cart.v1.CartCommandService"), nil)
	if err != nil {
		t.Fatalf("NewLimiter: %v", err)
	}
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l.now = c.now
	return l, c
}

// unary runs one call of method by principal through the unary interceptor.
func unary(l *Limiter, principal, method string) error {
	_, err := l.UnaryInterceptor()(withPrincipal(context.Background(), principal), nil,
		&grpc.UnaryServerInfo{FullMethod: method},
		func(context.Context, any) (any, error) { return "ok", nil })
	return err
}

// retryDelay returns the RetryInfo delay of a refusal, failing the test when
// the error is not a refusal with one.
func retryDelay(t *testing.T, err error) time.Duration {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("status = %v, want ResourceExhausted", err)
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Fatalf("no RetryInfo in %v", st.Details())
	return 0
}

func TestRateLimitValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  RateLimit
		want []string // every problem must be reported
	}{
		{"zero value is off and valid", RateLimit{}, nil},
		{"typical", RateLimit{PerSecond: 5, Burst: 10, MaxKeys: 1000}, nil},
		{"burst without rate is harmless", RateLimit{Burst: 10}, nil},
		{"negative rate", RateLimit{PerSecond: -1, Burst: 1}, []string{"negative"}},
		{"zero burst with a rate", RateLimit{PerSecond: 1}, []string{"burst 0"}},
		{"not a number", RateLimit{PerSecond: nan(), Burst: 1}, []string{"finite"}},
		{"every problem at once", RateLimit{PerSecond: -2, Burst: -1, MaxKeys: -5},
			[]string{"rate -2", "burst -1", "max keys -5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, missing %q", err, w)
				}
			}
		})
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestNewLimiterNeedsKeyAndPredicateWhenOn(t *testing.T) {
	if _, err := NewLimiter(RateLimit{PerSecond: 1, Burst: 1}, nil, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "key") || !strings.Contains(err.Error(), "predicate") {
		t.Errorf("NewLimiter(on, nil, nil) = %v, want both missing functions named", err)
	}
	if _, err := NewLimiter(RateLimit{}, nil, nil, nil); err != nil {
		t.Errorf("NewLimiter(off, nil, nil) = %v, want nil", err)
	}
}

func TestLimiterOffLetsEverythingThrough(t *testing.T) {
	l, err := NewLimiter(RateLimit{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := unary(l, "alice", commandMethod); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

func TestLimiterBurstThenRefusal(t *testing.T) {
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		wantDelay time.Duration // until the next token, with the clock stopped
	}{
		{"one per second, burst 3", 1, 3, time.Second},
		{"ten per second, burst 1", 10, 1, 100 * time.Millisecond},
		{"one per minute, burst 5", 1.0 / 60, 5, time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestLimiter(t, RateLimit{PerSecond: tc.perSecond, Burst: tc.burst})
			for i := range tc.burst {
				if err := unary(l, "alice", commandMethod); err != nil {
					t.Fatalf("call %d of the burst: %v", i+1, err)
				}
			}

			err := unary(l, "alice", commandMethod)

			delay := retryDelay(t, err)
			if delay <= 0 {
				t.Fatalf("RetryInfo delay = %v, want > 0", delay)
			}
			if diff := (delay - tc.wantDelay).Abs(); diff > time.Millisecond {
				t.Errorf("RetryInfo delay = %v, want %v", delay, tc.wantDelay)
			}
			// A refusal takes no token: it is refused again with the same delay.
			if again := retryDelay(t, unary(l, "alice", commandMethod)); again != delay {
				t.Errorf("second refusal delay = %v, want %v", again, delay)
			}
			if err := unary(l, "bob", commandMethod); err != nil {
				t.Errorf("another principal was limited: %v", err)
			}
			if err := unary(l, "alice", queryMethod); err != nil {
				t.Errorf("a method outside the predicate was limited: %v", err)
			}
		})
	}
}

func TestLimiterRefills(t *testing.T) {
	l, c := newTestLimiter(t, RateLimit{PerSecond: 2, Burst: 4})
	steps := []struct {
		advance time.Duration
		calls   int
		allowed int
	}{
		{0, 6, 4},                      // the burst
		{250 * time.Millisecond, 1, 0}, // half a token
		{250 * time.Millisecond, 2, 1}, // one token
		{10 * time.Second, 6, 4},       // full again, not more than the burst
	}
	for i, s := range steps {
		c.advance(s.advance)
		allowed := 0
		for range s.calls {
			if err := unary(l, "alice", commandMethod); err == nil {
				allowed++
			} else if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		if allowed != s.allowed {
			t.Errorf("step %d (+%v): %d of %d allowed, want %d", i, s.advance, allowed, s.calls, s.allowed)
		}
	}
}

func TestLimiterRetryDelayIsHonest(t *testing.T) {
	l, c := newTestLimiter(t, RateLimit{PerSecond: 3, Burst: 2})
	for range 2 {
		if err := unary(l, "alice", commandMethod); err != nil {
			t.Fatal(err)
		}
	}
	c.advance(100 * time.Millisecond)
	delay := retryDelay(t, unary(l, "alice", commandMethod))

	c.advance(delay - time.Millisecond)
	if err := unary(l, "alice", commandMethod); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("before the delay: %v, want ResourceExhausted", err)
	}
	c.advance(time.Millisecond)
	if err := unary(l, "alice", commandMethod); err != nil {
		t.Fatalf("after the delay: %v, want allowed", err)
	}
}

func TestLimiterStreamsTakeATokenWhenTheyStart(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimit{PerSecond: 1, Burst: 2})
	intercept := l.StreamInterceptor()
	start := func(principal, method string) error {
		return intercept(nil, fakeStream{ctx: withPrincipal(context.Background(), principal)},
			&grpc.StreamServerInfo{FullMethod: method, IsServerStream: true},
			func(any, grpc.ServerStream) error { return nil })
	}
	for i := range 2 {
		if err := start("alice", commandMethod); err != nil {
			t.Fatalf("stream %d: %v", i+1, err)
		}
	}
	if d := retryDelay(t, start("alice", commandMethod)); d <= 0 {
		t.Errorf("delay = %v, want > 0", d)
	}
	if err := start("alice", queryMethod); err != nil {
		t.Errorf("stream outside the predicate limited: %v", err)
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }

func TestLimiterMemoryIsBounded(t *testing.T) {
	t.Run("idle buckets are dropped once full again", func(t *testing.T) {
		l, c := newTestLimiter(t, RateLimit{PerSecond: 1, Burst: 5})
		for i := range 100 {
			_ = unary(l, fmt.Sprintf("user-%d", i), commandMethod)
		}
		if got := l.Keys(); got != 100 {
			t.Fatalf("Keys() = %d, want 100", got)
		}
		c.advance(4 * time.Second) // not yet full again: nothing may go
		_ = unary(l, "user-0", commandMethod)
		if got := l.Keys(); got != 100 {
			t.Fatalf("after 4s: Keys() = %d, want 100", got)
		}
		c.advance(time.Second) // 5s = Burst / PerSecond for all but user-0
		_ = unary(l, "late", commandMethod)
		if got := l.Keys(); got != 2 {
			t.Errorf("after 5s: Keys() = %d, want 2 (user-0 and late)", got)
		}
	})
	t.Run("dropping an idle bucket grants nothing extra", func(t *testing.T) {
		l, c := newTestLimiter(t, RateLimit{PerSecond: 1, Burst: 2})
		for range 3 {
			_ = unary(l, "alice", commandMethod)
		}
		c.advance(time.Second) // one token back; the bucket must stay
		_ = unary(l, "bob", commandMethod)
		if err := unary(l, "alice", commandMethod); err != nil {
			t.Fatalf("the token due was not granted: %v", err)
		}
		if err := unary(l, "alice", commandMethod); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("alice got a fresh bucket: %v", err)
		}
	})
	t.Run("the number of principals is capped", func(t *testing.T) {
		l, _ := newTestLimiter(t, RateLimit{PerSecond: 1, Burst: 1, MaxKeys: 10})
		for i := range 1000 {
			_ = unary(l, fmt.Sprintf("user-%d", i), commandMethod)
			if got := l.Keys(); got > 10 {
				t.Fatalf("after %d principals: Keys() = %d, want at most 10", i+1, got)
			}
		}
		// The most recent principals keep their (empty) buckets.
		if err := unary(l, "user-999", commandMethod); status.Code(err) != codes.ResourceExhausted {
			t.Errorf("recent principal lost its bucket: %v", err)
		}
	})
}

func TestLimiterConcurrentUse(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimit{PerSecond: 1, Burst: 50, MaxKeys: 8})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed = map[string]int{}
	)
	for g := range 16 {
		wg.Go(func() {
			p := fmt.Sprintf("user-%d", g%4)
			for range 40 {
				if unary(l, p, commandMethod) == nil {
					mu.Lock()
					allowed[p]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for p, n := range allowed {
		if n != 50 {
			t.Errorf("%s: %d allowed with the clock stopped, want the burst of 50", p, n)
		}
	}
}

func TestLimiterRefusalCarriesErrorInfo(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimit{PerSecond: 1, Burst: 1, ErrorDomain: "cart.acme.com"})
	_ = unary(l, "alice", commandMethod)
	st := status.Convert(unary(l, "alice", commandMethod))
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			if ei.GetReason() != RateLimitReason || ei.GetDomain() != "cart.acme.com" {
				t.Errorf("ErrorInfo = %v", ei)
			}
			return
		}
	}
	t.Errorf("no ErrorInfo in %v", st.Details())
}
