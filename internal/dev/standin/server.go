package standin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/projections"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Config configures a stand-in server.
type Config struct {
	// Listen is the host:port to listen on; empty means 127.0.0.1:0 (a free
	// port on loopback).
	Listen string
	// DataDir holds the event log. Empty keeps everything in memory.
	DataDir string
	// Logger receives start/stop lines, recovery warnings and one debug line
	// per call. Nil discards logs.
	Logger *slog.Logger
	// AdvertiseHost is the host in Addr, ConnectionString and the gossip
	// member the client connects to after discovery. Empty means the Listen
	// host, or 127.0.0.1 when listening on all interfaces.
	AdvertiseHost string
	// GracePeriod bounds how long Close waits for in-flight calls before
	// cutting connections. Zero means 5 s.
	GracePeriod time.Duration
	// SlowSubscriberTimeout is how long one send of a subscription message
	// may stay blocked on a client that does not read (its flow-control
	// window full) before the subscription is dropped with ResourceExhausted,
	// so a stalled client cannot hold a server goroutine and stream forever.
	// Zero means DefaultSlowSubscriberTimeout; a negative value never drops.
	SlowSubscriberTimeout time.Duration

	now   func() time.Time // clock for created timestamps and $maxAge; nil = time.Now
	store *store           // a store to reuse, for Restart in memory mode
}

// Option adjusts the Config of a server started by Start.
type Option func(*Config)

// WithDataDir persists events under dir, so a test can restart the server on
// the same data (see Server.Restart) or inspect recovery.
func WithDataDir(dir string) Option { return func(c *Config) { c.DataDir = dir } }

// WithSlowSubscriberTimeout sets Config.SlowSubscriberTimeout, so a test
// can have a stalled subscriber dropped quickly (or never, with d < 0).
func WithSlowSubscriberTimeout(d time.Duration) Option {
	return func(c *Config) { c.SlowSubscriberTimeout = d }
}

// DefaultSlowSubscriberTimeout is the SlowSubscriberTimeout used when none is
// configured: long enough that a busy but live consumer (a projection
// waiting on its database, a short debugger pause) is not dropped, short enough
// that an abandoned one is reclaimed.
const DefaultSlowSubscriberTimeout = 30 * time.Second

// WithLogger makes the server log to l instead of discarding its logs.
func WithLogger(l *slog.Logger) Option { return func(c *Config) { c.Logger = l } }

// withClock replaces the clock, so tests can age events past $maxAge without
// sleeping.
func withClock(now func() time.Time) Option { return func(c *Config) { c.now = now } }

// keepalivePolicy lets the client's pings through: the v4 client pings every
// 10 s even with no call in flight, and a stricter server answers
// ENHANCE_YOUR_CALM "too_many_pings", which drops its subscriptions.
var keepalivePolicy = keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}

// Server is a running stand-in. Create it with New (or Start in tests), run
// it with Serve, stop it with Close.
type Server struct {
	cfg    Config
	logger *slog.Logger
	store  *store
	subs   *subscriptionControl
	grpc   *grpc.Server
	health *health.Server
	lis    net.Listener
	addr   string

	closeOnce sync.Once
	closeErr  error
}

// New opens the store (replaying the data directory, if any), records a new
// epoch and binds the listener, so Addr is valid as soon as New returns.
// Nothing is served until Serve is called.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = 5 * time.Second
	}
	if cfg.SlowSubscriberTimeout == 0 {
		cfg.SlowSubscriberTimeout = DefaultSlowSubscriberTimeout
	}
	listenHost, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("standin: listen address %q: %w", cfg.Listen, err)
	}

	st := cfg.store
	if st == nil {
		if st, err = newStore(cfg.DataDir, cfg.now, cfg.Logger); err != nil {
			return nil, fmt.Errorf("standin: open store: %w", err)
		}
	}
	instance := uuid.New()
	if err := st.writeEpoch(instance); err != nil {
		_ = st.close()
		return nil, fmt.Errorf("standin: write epoch: %w", err)
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = st.close()
		return nil, fmt.Errorf("standin: listen: %w", err)
	}
	_, portStr, _ := net.SplitHostPort(lis.Addr().String())
	port, _ := strconv.Atoi(portStr)
	host := cfg.AdvertiseHost
	if host == "" {
		host = listenHost
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
	}

	s := &Server{
		cfg:    cfg,
		logger: cfg.Logger,
		store:  st,
		subs:   newSubscriptionControl(st, cfg.SlowSubscriberTimeout),
		health: health.NewServer(),
		lis:    lis,
		addr:   net.JoinHostPort(host, portStr),
	}
	s.grpc = grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalivePolicy),
		grpc.ChainUnaryInterceptor(s.logUnary),
		grpc.ChainStreamInterceptor(s.logStream),
	)
	api.RegisterStreamsServer(s.grpc, &streamsService{store: st, subs: s.subs, maxAppendSize: defaultMaxAppendSize})
	serverfeatures.RegisterServerFeaturesServer(s.grpc, featuresService{})
	gossip.RegisterGossipServer(s.grpc, &gossipService{instance: instance, host: host, port: uint32(port)})
	// Registered so that they answer Unimplemented by name; the product does
	// not use them and the stand-in does not implement them.
	persistent.RegisterPersistentSubscriptionsServer(s.grpc, persistent.UnimplementedPersistentSubscriptionsServer{})
	projections.RegisterProjectionsServer(s.grpc, projections.UnimplementedProjectionsServer{})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	return s, nil
}

// Serve serves until ctx is done or Close is called, then shuts down
// gracefully (see Close). It returns nil after a requested shutdown.
func (s *Server) Serve(ctx context.Context) error {
	s.logger.Info("EventStoreDB stand-in serving", "addr", s.addr, "connection", s.ConnectionString(), "dataDir", s.cfg.DataDir)
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(s.lis) }()
	select {
	case <-ctx.Done():
		closeErr := s.Close()
		if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return errors.Join(fmt.Errorf("standin: serve: %w", err), closeErr)
		}
		return closeErr
	case err := <-errc:
		closeErr := s.Close()
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return errors.Join(fmt.Errorf("standin: serve: %w", err), closeErr)
		}
		return closeErr
	}
}

// Close stops the server: health turns NOT_SERVING, subscriptions end with
// Unavailable (as when a real node shuts down), in-flight calls get
// GracePeriod to finish before connections are cut, and the event log is
// synced and closed. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.health.Shutdown()
		s.subs.shutdown()
		stopped := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(stopped)
		}()
		timer := time.NewTimer(s.cfg.GracePeriod)
		defer timer.Stop()
		select {
		case <-stopped:
		case <-timer.C:
			s.logger.Warn("graceful stop timed out; closing connections")
			s.grpc.Stop()
			<-stopped
		}
		if s.cfg.DataDir != "" {
			s.closeErr = s.store.close()
		}
		s.logger.Info("EventStoreDB stand-in stopped", "addr", s.addr)
	})
	return s.closeErr
}

// Addr is the advertised host:port, e.g. "127.0.0.1:2113".
func (s *Server) Addr() string { return s.addr }

// ConnectionString is the v4 client connection string for this server,
// e.g. "esdb://127.0.0.1:2113?tls=false".
func (s *Server) ConnectionString() string { return "esdb://" + s.addr + "?tls=false" }

// DropSubscriptions ends every subscription open now with an Unavailable
// error, as a node restart or a network fault would, so tests can exercise a
// subscriber's reconnect logic. Subscriptions made afterwards are unaffected.
func (s *Server) DropSubscriptions() { s.subs.dropAll() }

// ActiveSubscriptions is the number of subscriptions whose server-side loop
// is still running. It exists for tests and metrics: after a subscription
// ends (by the client, a drop or the slow-subscriber timeout) the count
// falls only once its goroutine has really finished, so a test can check
// that nothing leaks.
func (s *Server) ActiveSubscriptions() int { return int(s.subs.active.Load()) }

// Start starts an in-memory server on a free loopback port for a test and
// stops it with tb.Cleanup. Options add a data directory or a logger.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	cfg := Config{}
	for _, o := range opts {
		o(&cfg)
	}
	return start(tb, cfg)
}

func start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("start EventStoreDB stand-in: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("stop EventStoreDB stand-in: %v", err)
		}
		if err := <-done; err != nil {
			tb.Errorf("EventStoreDB stand-in: %v", err)
		}
	})
	return s
}

// Restart stops s and starts a new server on the same address with the same
// options, the way a node restart looks to clients: their connections and
// subscriptions break, and the client reconnects to the same connection
// string. With a data directory the new server recovers from the log; in
// memory the events are handed over, as if they had been durable.
func (s *Server) Restart(tb testing.TB) *Server {
	tb.Helper()
	if err := s.Close(); err != nil {
		tb.Fatalf("restart EventStoreDB stand-in: %v", err)
	}
	cfg := s.cfg
	cfg.Listen = s.lis.Addr().String()
	if cfg.DataDir == "" {
		cfg.store = s.store
	}
	return start(tb, cfg)
}

func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	began := time.Now()
	resp, err := handler(ctx, req)
	s.logger.Debug("rpc", "method", info.FullMethod, "code", status.Code(err).String(), "took", time.Since(began))
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	began := time.Now()
	err := handler(srv, ss)
	s.logger.Debug("rpc", "method", info.FullMethod, "code", status.Code(err).String(), "took", time.Since(began))
	return err
}
