package guard

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultMaxKeys is the number of principals a [Limiter] tracks when
// RateLimit.MaxKeys is zero: at about 200 bytes a bucket, a few MB at most.
const DefaultMaxKeys = 10000

// RateLimitReason is the ErrorInfo reason of a refused request, so clients
// can tell their own rate limit from other RESOURCE_EXHAUSTED answers.
const RateLimitReason = "RATE_LIMITED"

// RateLimit configures the token bucket every principal gets. The zero value
// turns limiting off.
type RateLimit struct {
	// PerSecond is the sustained rate of requests a principal may make;
	// 0 turns limiting off.
	PerSecond float64
	// Burst is how many requests a principal may make at once after being
	// idle; at least 1 when PerSecond is set.
	Burst int
	// MaxKeys caps the number of principals tracked at once, bounding the
	// memory an attacker with many identities can make us hold; 0 means
	// DefaultMaxKeys.
	MaxKeys int
	// ErrorDomain is the ErrorInfo domain of refusals (the services'
	// error domain); when empty, no ErrorInfo is attached.
	ErrorDomain string
}

// Enabled reports whether the configuration limits anything, so wiring can
// skip the interceptors and the effective configuration can be logged.
func (c RateLimit) Enabled() bool { return c.PerSecond > 0 }

// Validate reports every problem of the configuration at once, so an
// operator fixes a bad deployment in one round.
func (c RateLimit) Validate() error {
	var errs []error
	switch {
	case math.IsNaN(c.PerSecond) || math.IsInf(c.PerSecond, 0):
		errs = append(errs, fmt.Errorf("rate limit: rate %v per second is not a finite number", c.PerSecond))
	case c.PerSecond < 0:
		errs = append(errs, fmt.Errorf("rate limit: rate %v per second is negative (0 turns limiting off)", c.PerSecond))
	}
	if c.Burst < 0 {
		errs = append(errs, fmt.Errorf("rate limit: burst %d is negative", c.Burst))
	}
	if c.PerSecond > 0 && c.Burst == 0 {
		errs = append(errs, errors.New("rate limit: burst 0 with a non-zero rate would refuse every request; use at least 1"))
	}
	if c.MaxKeys < 0 {
		errs = append(errs, fmt.Errorf("rate limit: max keys %d is negative (0 means %d)", c.MaxKeys, DefaultMaxKeys))
	}
	return errors.Join(errs...)
}

// InService returns a method predicate for [NewLimiter] matching every
// method of the named gRPC service (e.g.
// cartv1.CartCommandService_ServiceDesc.ServiceName), so wiring need not
// spell out method names that change with the API.
func InService(serviceName string) func(fullMethod string) bool {
	prefix := "/" + serviceName + "/"
	return func(fullMethod string) bool { return strings.HasPrefix(fullMethod, prefix) }
}

// Limiter limits every principal's requests with a token bucket, on the
// methods its predicate selects. A unary call takes one token; a stream takes
// one when it starts. Principals are told by the key function; requests for
// which it returns "" share one bucket, so run the Limiter after
// authentication, where every request has a principal.
//
// A bucket is dropped when it has been idle long enough to be full again
// (Burst / PerSecond), which gives nobody extra tokens; when MaxKeys
// principals are tracked, the least recently seen one is dropped, which may
// give it a fresh bucket: the price of bounded memory. A Limiter is safe for
// concurrent use.
type Limiter struct {
	cfg     RateLimit
	key     func(context.Context) string
	limited func(fullMethod string) bool
	log     *slog.Logger
	now     func() time.Time // a test's clock; time.Now otherwise
	idle    time.Duration    // a bucket idle this long is full again
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // front: most recently used
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

// NewLimiter returns a Limiter for cfg, or every problem with its arguments.
// key names the principal of a request (the authenticated subject); limited
// selects the full method names ("/pkg.Service/Method") to limit. log (or
// slog.Default) gets refusals at Debug: they are the caller's doing, and a
// flood of them must not flood the logs.
//
// With limiting off (cfg.PerSecond 0), key and limited may be nil and the
// interceptors pass every request through.
func NewLimiter(cfg RateLimit, key func(context.Context) string, limited func(fullMethod string) bool, log *slog.Logger) (*Limiter, error) {
	errs := []error{cfg.Validate()}
	if cfg.Enabled() {
		if key == nil {
			errs = append(errs, errors.New("rate limit: no key function naming the principal"))
		}
		if limited == nil {
			errs = append(errs, errors.New("rate limit: no predicate choosing the limited methods"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Limiter{cfg: cfg, key: key, limited: limited, log: log, now: time.Now,
		maxKeys: cfg.MaxKeys, buckets: make(map[string]*list.Element)}
	if l.maxKeys == 0 {
		l.maxKeys = DefaultMaxKeys
	}
	if cfg.Enabled() {
		idle := math.Ceil(float64(cfg.Burst) / cfg.PerSecond * float64(time.Second))
		l.idle = time.Duration(math.MaxInt64)
		if idle < float64(math.MaxInt64) {
			l.idle = time.Duration(idle)
		}
	}
	return l, nil
}

// UnaryInterceptor limits unary calls. Put it after authentication (the key
// function needs the principal) and after the [Decoder]'s interceptors.
func (l *Limiter) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := l.check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor limits the start of streams; messages within a stream
// are not counted. Place it as [Limiter.UnaryInterceptor].
func (l *Limiter) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := l.check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// Keys reports how many principals are tracked, for a metric and the tests
// of eviction.
func (l *Limiter) Keys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *Limiter) check(ctx context.Context, method string) error {
	if !l.cfg.Enabled() || !l.limited(method) {
		return nil
	}
	principal := l.key(ctx)
	wait := l.reserve(principal, l.now())
	if wait <= 0 {
		return nil
	}
	l.log.LogAttrs(ctx, slog.LevelDebug, "request refused: rate limit",
		slog.String("method", method), slog.String("principal", principal), slog.Duration("retry_after", wait))
	return l.refusal(wait)
}

// reserve takes a token for principal at now, or returns how long until one
// is available (and takes nothing).
func (l *Limiter) reserve(principal string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictIdle(now)
	b := l.bucketFor(principal, now)
	r := b.lim.ReserveN(now, 1)
	if !r.OK() { // only if Burst < 1, which Validate forbids
		return time.Duration(math.MaxInt64)
	}
	wait := r.DelayFrom(now)
	if wait > 0 {
		// A refused request must not spend a future token.
		r.CancelAt(now)
	}
	return wait
}

func (l *Limiter) bucketFor(principal string, now time.Time) *bucket {
	if e, ok := l.buckets[principal]; ok {
		l.lru.MoveToFront(e)
		b := e.Value.(*bucket)
		if now.After(b.last) {
			b.last = now
		}
		return b
	}
	for len(l.buckets) >= l.maxKeys {
		l.drop(l.lru.Back())
	}
	b := &bucket{key: principal, lim: rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst), last: now}
	l.buckets[principal] = l.lru.PushFront(b)
	return b
}

// evictIdle drops buckets that are full again; the list is ordered by last
// use, so it stops at the first one still in use.
func (l *Limiter) evictIdle(now time.Time) {
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		if now.Sub(e.Value.(*bucket).last) < l.idle {
			return
		}
		l.drop(e)
	}
}

func (l *Limiter) drop(e *list.Element) {
	delete(l.buckets, e.Value.(*bucket).key)
	l.lru.Remove(e)
}

func (l *Limiter) refusal(wait time.Duration) error {
	// The message rounds up: "retry in 0s" would invite an immediate retry.
	shown := wait.Truncate(time.Millisecond)
	if shown < wait {
		shown += time.Millisecond
	}
	st := status.New(codes.ResourceExhausted,
		fmt.Sprintf("too many requests from this caller; retry in %s", shown))
	details := []protoadapt.MessageV1{&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)}}
	if l.cfg.ErrorDomain != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: RateLimitReason, Domain: l.cfg.ErrorDomain})
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		st = withDetails
	}
	return st.Err()
}
