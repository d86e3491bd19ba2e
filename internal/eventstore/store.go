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
	cfg *esdb.Configuration
	log *slog.Logger

	mu     sync.Mutex
	client *esdb.Client
	closed bool
}

// Open prepares a connection to EventStoreDB from an esdb:// or
// esdb+discover:// connection string. Like the client it dials nothing: the
// first operation (Ping is the cheap one) finds the node, so Open succeeds
// while the store is down and the service can start and report NOT_SERVING.
func Open(ctx context.Context, connString string, log *slog.Logger) (*Store, error) {
	_ = ctx // reserved: the client connects lazily
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := esdb.ParseConnectionString(connString)
	if err != nil {
		// A *url.Error repeats the whole string, password included; keep
		// only its cause and show the string redacted.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("eventstore: open %s: %v", Redact(connString), err)
	}
	cfg.Logger = clientLogger(log)
	s := &Store{cfg: cfg, log: log}
	if s.client, err = esdb.NewClient(cfg); err != nil {
		return nil, fmt.Errorf("eventstore: open %s: %v", Redact(connString), err)
	}
	return s, nil
}

// Close releases the connection. Operations after Close fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.client.Close()
}

// conn returns the current client. The v4 client closes itself for good when
// node discovery fails ten times in a row (about a second with the store
// down), so a Store that was not closed by its owner replaces such a client;
// see renew.
func (s *Store) conn() (*esdb.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.client, nil
}

// renew replaces c with a fresh client if c is still the current one, so that
// the next operation starts a new discovery instead of failing forever.
func (s *Store) renew(c *esdb.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.client != c {
		return
	}
	nc, err := esdb.NewClient(s.cfg)
	if err != nil { // cannot happen: the configuration was valid at Open
		s.log.Error("eventstore: cannot renew client", "err", err)
		return
	}
	_ = c.Close()
	s.client = nc
	s.log.Debug("eventstore: the client gave up discovery and closed itself; renewed it")
}

// Ping checks that the store answers, for health checks. It returns an error
// wrapping cart.ErrUnavailable when it does not, and gives up after at most
// two seconds even when the client is stuck discovering a node (which the
// client does without looking at the context).
func (s *Store) Ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.readRaw(pctx, pingStream, esdb.Forwards, esdb.Start{}, 1, func(*esdb.RecordedEvent) error { return nil })
		done <- err
	}()
	select {
	case err := <-done:
		switch {
		case err == nil, errors.Is(err, cart.ErrNotFound):
			return nil
		case ctx.Err() == nil && pctx.Err() != nil:
			return fmt.Errorf("eventstore: ping: no answer in %s: %w", pingTimeout, cart.ErrUnavailable)
		default:
			return fmt.Errorf("eventstore: ping: %w", err)
		}
	case <-pctx.Done():
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("eventstore: ping: %w", err)
		}
		return fmt.Errorf("eventstore: ping: no answer in %s: %w", pingTimeout, cart.ErrUnavailable)
	}
}

// translate turns the client's errors into the domain's. It needs the
// client that failed to renew it when the client closed itself, and the
// caller's context so that a cancelled call is reported as such rather than
// as an outage.
func (s *Store) translate(ctx context.Context, c *esdb.Client, err error) error {
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
		case esdb.ErrorCodeConnectionClosed:
			if c != nil {
				s.renew(c)
			}
			return fmt.Errorf("%v: %w", err, cart.ErrUnavailable)
		case esdb.ErrorUnavailable, esdb.ErrorCodeDeadlineExceeded, esdb.ErrorCodeNotLeader, esdb.ErrorAborted:
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
