package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/cart"
)

// StreamPrefix starts the name of every cart stream; the read side filters
// $all on it, so nothing but cart events may live in streams that start so.
const StreamPrefix = "cart-"

// StreamName is the stream that holds userID's cart, one stream per user so
// that a cart's events are totally ordered and appends to it are guarded by
// one expected revision.
func StreamName(userID string) string { return StreamPrefix + userID }

// pingStream is read by Ping. It never exists (nothing writes it) and lies
// outside the cart- prefix, so a ping costs one "stream not found" reply and
// can never be confused with a user's cart.
const pingStream = "cartsvc-ping"

// pingTimeout bounds a health check even when the caller's context does not.
const pingTimeout = 2 * time.Second

// ErrClosed is returned by operations on a Store after Close, so that callers
// shutting down can tell it apart from an outage.
var ErrClosed = errors.New("eventstore: store closed")

// Store is a connection to EventStoreDB. It is safe for concurrent use; one
// Store per process is enough.
type Store struct {
	cfg    *esdb.Configuration
	log    *slog.Logger
	tracer trace.Tracer // see WithTracerProvider

	mu      sync.Mutex
	cur     *conn
	closed  bool
	ready   bool         // the last call that finished reached the store
	probing *probe       // the one call let in while not ready; see conn.go
	observe CallObserver // nil: none; see ObserveCalls
}

// Open prepares a connection to EventStoreDB from an esdb:// or
// esdb+discover:// connection string. Like the client it dials nothing: the
// first operation (Ping is the cheap one) finds the node, so Open succeeds
// while the store is down and the service can start and report NOT_SERVING.
func Open(ctx context.Context, connString string, log *slog.Logger, opts ...Option) (*Store, error) {
	_ = ctx // reserved: the client connects lazily
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := parse(connString)
	if err != nil {
		return nil, fmt.Errorf("eventstore: open: %w", err)
	}
	cfg.Logger = clientLogger(log)
	cfg.MaxDiscoverAttempts = unboundedDiscovery
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("eventstore: open %s: %v", Redact(connString), err)
	}
	s := &Store{cfg: cfg, log: log, cur: &conn{client: client}}
	WithTracerProvider(nil)(s)
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// ValidateConnectionString checks a connection string the way Open will,
// without connecting, so that configuration can be rejected at start-up
// with every other problem. Its errors never show the password.
func ValidateConnectionString(connString string) error {
	_, err := parse(connString)
	return err
}

func parse(connString string) (*esdb.Configuration, error) {
	if !strings.HasPrefix(connString, "esdb://") && !strings.HasPrefix(connString, "esdb+discover://") {
		return nil, fmt.Errorf("connection string %s: want an esdb:// or esdb+discover:// URL", Redact(connString))
	}
	cfg, err := esdb.ParseConnectionString(connString)
	if err != nil {
		// A *url.Error repeats the whole string, password included; keep
		// only its cause and show the string redacted.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("connection string %s: %v", Redact(connString), err)
	}
	return cfg, nil
}

// Close releases the connection once the calls still using it have ended.
// Operations after Close fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cur.retired = true
	if s.cur.users == 0 {
		return s.cur.client.Close()
	}
	return nil
}

// Ping checks that the store answers, for health checks. It returns an error
// wrapping cart.ErrUnavailable when it does not, after at most two seconds
// even while the client is still looking for the node.
func (s *Store) Ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	_, err := s.readRaw(pctx, pingStream, esdb.Forwards, esdb.Start{}, 1, func(*esdb.RecordedEvent) error { return nil })
	switch {
	case err == nil, errors.Is(err, cart.ErrNotFound):
		return nil
	case ctx.Err() == nil && pctx.Err() != nil:
		return fmt.Errorf("eventstore: ping: no answer in %s: %w", pingTimeout, cart.ErrUnavailable)
	default:
		return fmt.Errorf("eventstore: ping: %w", err)
	}
}

// translate turns the client's errors into the domain's. It needs the
// caller's context so that a cancelled call is reported as such rather than
// as an outage.
func translate(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrClosed) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var ee *esdb.Error
	if errors.As(err, &ee) {
		switch ee.Code() {
		case esdb.ErrorCodeWrongExpectedVersion:
			return fmt.Errorf("%v: %w", err, cart.ErrConcurrencyConflict)
		case esdb.ErrorCodeResourceNotFound:
			return fmt.Errorf("%v: %w", err, cart.ErrNotFound)
		case esdb.ErrorCodeConnectionClosed, esdb.ErrorUnavailable, esdb.ErrorCodeDeadlineExceeded, esdb.ErrorCodeNotLeader, esdb.ErrorAborted:
			return fmt.Errorf("%v: %w", err, cart.ErrUnavailable)
		}
	}
	if transient(status.Code(err)) {
		return fmt.Errorf("%v: %w", err, cart.ErrUnavailable)
	}
	return err
}

// transient tells which gRPC codes mean "the store or the way to it is in
// trouble; the same call may work later", as opposed to a request the store
// rejects (permissions, a deleted stream), which retrying cannot fix.
func transient(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

// clientLogger routes the client's own log lines into slog at debug level:
// the client logs every failed call and every discovery attempt (ten a
// second while the store is down) although the adapter returns those errors
// to callers who log them once, and health checks report the outage.
func clientLogger(log *slog.Logger) esdb.LoggingFunc {
	return func(level esdb.LogLevel, format string, args ...any) {
		log.Debug("esdb client: "+fmt.Sprintf(format, args...), "client_level", level)
	}
}

// Redact masks the password of a connection string (esdb://user:password@host)
// so that configuration can be logged and errors can quote it.
func Redact(connString string) string {
	i := strings.Index(connString, "://")
	if i < 0 {
		return connString
	}
	rest := connString[i+3:]
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return connString
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return connString
	}
	return connString[:i+3] + user + ":xxxxx" + rest[at:]
}
