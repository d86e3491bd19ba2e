// Package commandsvc wires command-svc: the EventStoreDB adapter, the command
// handler and the gRPC command API, with a health service that follows the
// event store and a graceful shutdown. cmd/command-svc parses the
// configuration and calls Run; the one-process local stack and end-to-end
// tests call Run in-process.
package commandsvc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/acme/cart/internal/eventstore"
)

// Defaults of Config.
const (
	DefaultListen          = "127.0.0.1:50051"
	DefaultESDBURL         = "esdb://127.0.0.1:2113?tls=false"
	DefaultShutdownTimeout = 10 * time.Second
	DefaultHealthInterval  = 2 * time.Second
)

// Config is everything command-svc needs to run.
type Config struct {
	// Listen is the gRPC address of the command API.
	Listen string
	// Listener, if set, is used instead of listening on Listen, so that a
	// caller that binds port 0 knows the address before Run starts.
	Listener net.Listener
	// ESDBURL is the EventStoreDB connection string (esdb:// or
	// esdb+discover://); it may hold a password.
	ESDBURL string
	// ShutdownTimeout bounds how long calls in flight may finish at
	// shutdown (0: DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// HealthInterval is how often EventStoreDB is pinged; the service is
	// SERVING only while it answers (0: DefaultHealthInterval).
	HealthInterval time.Duration
	// SnapshotEvery is how many events a cart gains between snapshots
	// (0: command.DefaultSnapshotEvery; negative: no snapshots).
	SnapshotEvery int
}

// WithDefaults fills every empty field with its default, so that a caller
// sets only what differs.
func (c Config) WithDefaults() Config {
	if c.Listen == "" && c.Listener == nil {
		c.Listen = DefaultListen
	}
	if c.ESDBURL == "" {
		c.ESDBURL = DefaultESDBURL
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = DefaultHealthInterval
	}
	return c
}

// Validate reports every problem of the configuration at once, so that an
// operator fixes them in one go. Messages never show the ESDB password.
func (c Config) Validate() error {
	var errs []error
	if c.Listener == nil {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("listen %q: must be host:port", c.Listen))
		}
	}
	if err := eventstore.ValidateConnectionString(c.ESDBURL); err != nil {
		errs = append(errs, fmt.Errorf("esdb: %w", err))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown-timeout %v: must not be negative", c.ShutdownTimeout))
	}
	if c.HealthInterval < 0 {
		errs = append(errs, fmt.Errorf("health-interval %v: must not be negative", c.HealthInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid command-svc configuration:\n%w", err)
	}
	return nil
}

// LogValue shows the configuration with the ESDB password masked.
func (c Config) LogValue() slog.Value {
	listen := c.Listen
	if c.Listener != nil {
		listen = c.Listener.Addr().String()
	}
	return slog.GroupValue(
		slog.String("listen", listen),
		slog.String("esdb", eventstore.Redact(c.ESDBURL)),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.Duration("health_interval", c.HealthInterval),
		slog.Int("snapshot_every", c.SnapshotEvery),
	)
}
