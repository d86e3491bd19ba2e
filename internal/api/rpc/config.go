package rpc

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/acme/cart/internal/cli"
)

// DefaultShutdownTimeout bounds how long calls in flight may finish at
// shutdown when a service sets nothing.
const DefaultShutdownTimeout = 10 * time.Second

// Defaults of the -drain and -max-connection-age flags. They are the
// flags' defaults only: a ServerConfig built in code (tests, the one-process
// local stack) with zero fields neither drains nor ages connections.
const (
	// DefaultDrain covers a balancer's health probe period (Kubernetes
	// checks readiness every few seconds) plus the endpoint update.
	DefaultDrain = 5 * time.Second
	// DefaultMaxConnectionAge makes clients reconnect, and so spread over
	// the replicas added since they connected, within minutes; a
	// reconnect costs one TCP and TLS handshake.
	DefaultMaxConnectionAge = 5 * time.Minute
	// DefaultMaxConnectionAgeGrace lets the longest regular call, a
	// GetCart waiting for min_version (at most 10 s), finish on an aged
	// connection.
	DefaultMaxConnectionAgeGrace = 30 * time.Second
)

// ServerConfig is what every service's gRPC server is configured with, so
// that both services take the same flags with the same meaning.
type ServerConfig struct {
	// Listen is the gRPC address of the service's API.
	Listen string
	// Listener, if set, is used instead of listening on Listen, so that a
	// caller that binds port 0 knows the address before Run starts.
	Listener net.Listener
	// ShutdownTimeout bounds how long calls in flight may finish at
	// shutdown.
	ShutdownTimeout time.Duration
	// HealthInterval is how often the service's stores are checked for the
	// health service.
	HealthInterval time.Duration
	// Security is who may call and over what transport.
	Security SecurityConfig
	// MetricsListen is the address of the private HTTP listener serving
	// /metrics (and pprof with Pprof); empty keeps it off.
	// MetricsListener, if set, is used instead of listening on it.
	MetricsListen   string
	MetricsListener net.Listener
	// Pprof serves net/http/pprof on the metrics listener.
	Pprof bool
	// Drain is how long the server keeps answering after its health went
	// NOT_SERVING at shutdown (see Lifecycle.Drain). Zero: none.
	Drain time.Duration
	// MaxConnectionAge closes each client connection (GOAWAY, ±10%
	// jitter) after this long, so that long-lived HTTP/2 connections
	// rebalance over replicas; MaxConnectionAgeGrace is how long calls on
	// it may still finish. Zero: connections live forever.
	MaxConnectionAge, MaxConnectionAgeGrace time.Duration
}

// ServerOptions are the gRPC server options that the configuration sets,
// for NewServer of the service's API (not of the admin API, whose long
// operations must not be cut by a connection's age).
func (c ServerConfig) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.KeepaliveParams(keepaliveParams(c.MaxConnectionAge, c.MaxConnectionAgeGrace))}
}

// WithDefaults fills the empty fields with the service's defaults.
func (c ServerConfig) WithDefaults(listen string, healthInterval time.Duration) ServerConfig {
	if c.Listen == "" && c.Listener == nil {
		c.Listen = listen
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = healthInterval
	}
	return c
}

// Validate returns every problem, in the words of the flags, for the
// service to join with its own.
func (c ServerConfig) Validate() []error {
	var errs []error
	if c.Listener == nil {
		if err := CheckAddr("listen", c.Listen); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown-timeout %v: must not be negative", c.ShutdownTimeout))
	}
	if c.HealthInterval <= 0 {
		errs = append(errs, fmt.Errorf("health-interval %v: must be positive", c.HealthInterval))
	}
	errs = append(errs, c.validateMetrics()...)
	for name, d := range map[string]time.Duration{"drain": c.Drain, "max-connection-age": c.MaxConnectionAge, "max-connection-age-grace": c.MaxConnectionAgeGrace} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must not be negative", name, d))
		}
	}
	return append(errs, c.Security.Validate()...)
}

// CheckAddr checks a host:port flag value, so that every address flag of
// every service fails the same way.
func CheckAddr(flagName, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s %q: must be host:port", flagName, addr)
	}
	return nil
}

// LogAttrs are the effective values, for the service's start-up line.
func (c ServerConfig) LogAttrs() []slog.Attr {
	listen := c.Listen
	if c.Listener != nil {
		listen = c.Listener.Addr().String()
	}
	return append([]slog.Attr{
		slog.String("listen", listen),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.Duration("health_interval", c.HealthInterval),
		slog.String("metrics_listen", c.metricsAddr()),
		slog.Bool("pprof", c.Pprof),
		slog.Duration("drain", c.Drain),
		slog.Duration("max_connection_age", c.MaxConnectionAge),
		slog.Duration("max_connection_age_grace", c.MaxConnectionAgeGrace),
	}, c.Security.LogAttrs()...)
}

// Bind returns the listener to serve on: the one given, or a new one on
// Listen.
func (c ServerConfig) Bind() (net.Listener, error) {
	if c.Listener != nil {
		return c.Listener, nil
	}
	lis, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return lis, nil
}

// Flags defines the server's flags on fs with the service's defaults:
// -listen (env listenEnv), -shutdown-timeout, -health-interval, -drain,
// -max-connection-age, -max-connection-age-grace and the security flags.
func (c *ServerConfig) Flags(fs *cli.FlagSet, listenEnv, defaultListen string, defaultHealth time.Duration, healthUsage string) {
	fs.StringVar(&c.Listen, "listen", listenEnv, defaultListen, "host:port of the gRPC API")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", "CART_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout,
		"how long calls in flight may finish at shutdown")
	fs.DurationVar(&c.HealthInterval, "health-interval", "CART_HEALTH_INTERVAL", defaultHealth, healthUsage)
	c.metricsFlags(fs)
	fs.DurationVar(&c.Drain, "drain", "CART_DRAIN", DefaultDrain,
		"how long the server keeps answering at shutdown after its health went NOT_SERVING; 0: stop at once")
	fs.DurationVar(&c.MaxConnectionAge, "max-connection-age", "CART_MAX_CONNECTION_AGE", DefaultMaxConnectionAge,
		"client connections are closed (GOAWAY) after about this long so clients rebalance over replicas; 0: never")
	fs.DurationVar(&c.MaxConnectionAgeGrace, "max-connection-age-grace", "CART_MAX_CONNECTION_AGE_GRACE", DefaultMaxConnectionAgeGrace,
		"how long calls may finish on a connection closed for its age")
	c.Security.Flags(fs)
}
