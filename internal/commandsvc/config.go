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
	"time"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/eventstore"
)

// Defaults of Config.
const (
	DefaultListen         = "127.0.0.1:50051"
	DefaultESDBURL        = "esdb://127.0.0.1:2113?tls=false"
	DefaultHealthInterval = 2 * time.Second
)

// Config is everything command-svc needs to run.
type Config struct {
	// ServerConfig is the gRPC server's: listen address, shutdown timeout,
	// and how often EventStoreDB is pinged (SERVING only while it answers).
	rpc.ServerConfig
	// ESDBURL is the EventStoreDB connection string (esdb:// or
	// esdb+discover://); it may hold a password.
	ESDBURL string
	// SnapshotEvery is how many events a cart gains between snapshots
	// (0: command.DefaultSnapshotEvery; negative: no snapshots).
	SnapshotEvery int
}

// WithDefaults fills every empty field with its default, so that a caller
// sets only what differs and the start-up log shows what is in effect.
func (c Config) WithDefaults() Config {
	c.ServerConfig = c.ServerConfig.WithDefaults(DefaultListen, DefaultHealthInterval)
	if c.ESDBURL == "" {
		c.ESDBURL = DefaultESDBURL
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = command.DefaultSnapshotEvery
	}
	return c
}

// Validate reports every problem of the configuration at once, so that an
// operator fixes them in one go. Messages never show the ESDB password.
func (c Config) Validate() error {
	errs := c.ServerConfig.Validate()
	if err := eventstore.ValidateConnectionString(c.ESDBURL); err != nil {
		errs = append(errs, fmt.Errorf("esdb: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid command-svc configuration:\n%w", err)
	}
	return nil
}

// LogValue shows the effective configuration with the ESDB password masked.
func (c Config) LogValue() slog.Value {
	attrs := append(c.ServerConfig.LogAttrs(),
		slog.String("esdb", eventstore.Redact(c.ESDBURL)),
		slog.Int("snapshot_every", c.SnapshotEvery),
	)
	return slog.GroupValue(attrs...)
}

// Flags defines command-svc's flags on fs, with environment fallbacks and
// the real defaults (what -h shows is what runs).
func (c *Config) Flags(fs *cli.FlagSet) {
	c.ServerConfig.Flags(fs, "CART_COMMAND_LISTEN", DefaultListen, DefaultHealthInterval,
		"how often EventStoreDB is pinged for the health service")
	fs.StringVar(&c.ESDBURL, "esdb", "CART_ESDB_URL", DefaultESDBURL,
		"EventStoreDB connection string, esdb:// or esdb+discover://")
	fs.IntVar(&c.SnapshotEvery, "snapshot-every", "CART_SNAPSHOT_EVERY", command.DefaultSnapshotEvery,
		"events between cart snapshots; negative: none")
}
