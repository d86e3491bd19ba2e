package rpc

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/acme/cart/internal/cli"
)

// DefaultShutdownTimeout bounds how long calls in flight may finish at
// shutdown when a service sets nothing.
const DefaultShutdownTimeout = 10 * time.Second

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
// -listen (env listenEnv), -shutdown-timeout, -health-interval and the
// security flags.
func (c *ServerConfig) Flags(fs *cli.FlagSet, listenEnv, defaultListen string, defaultHealth time.Duration, healthUsage string) {
	fs.StringVar(&c.Listen, "listen", listenEnv, defaultListen, "host:port of the gRPC API")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", "CART_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout,
		"how long calls in flight may finish at shutdown")
	fs.DurationVar(&c.HealthInterval, "health-interval", "CART_HEALTH_INTERVAL", defaultHealth, healthUsage)
	c.metricsFlags(fs)
	c.Security.Flags(fs)
}
