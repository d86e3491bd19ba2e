// Package commandsvc wires command-svc: the EventStoreDB adapter, the command
// handler and the gRPC command API, with a health service that follows the
// event store and a graceful shutdown. cmd/command-svc parses the
// configuration and calls Run; the one-process local stack and end-to-end
// tests call Run in-process.
package commandsvc

import (
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"time"

	"github.com/acme/cart/internal/api/guard"
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
	// CatalogFile is a JSON price list (reloaded when it changes);
	// PriceService the host:port of a cart.v1.PriceService. Exactly one of
	// them, or Catalog, says where prices come from: never the caller.
	CatalogFile  string
	PriceService string
	// PriceServiceCA, if set, makes the PriceService connection TLS,
	// trusting this CA bundle; PriceServiceCert and PriceServiceKey then
	// present a client certificate (mTLS), re-read when the files change.
	PriceServiceCA                    string
	PriceServiceCert, PriceServiceKey string
	// PriceTimeout bounds one price lookup (0: DefaultPriceTimeout).
	PriceTimeout time.Duration
	// Catalog, if set, is used as is (the local stack and tests).
	Catalog command.Catalog
	// RateLimit bounds the commands per principal (PerSecond 0: off).
	RateLimit guard.RateLimit
	// TracerProvider, if set, receives the service's spans (a test's
	// in-memory recorder); nil: the OTEL_* environment decides
	// (internal/tracing), off when it says nothing.
	TracerProvider trace.TracerProvider
}

// DefaultPriceTimeout bounds a price lookup when nothing is set, so that a
// slow catalog fails a command quickly as unavailable.
const DefaultPriceTimeout = time.Second

// Default rate limit of the command-svc flags: a person adds items far
// slower; a service acting for many users needs a higher limit of its own.
const (
	DefaultRatePerSecond = 20
	DefaultRateBurst     = 40
)

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
	if c.PriceTimeout == 0 {
		c.PriceTimeout = DefaultPriceTimeout
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
	sources := 0
	for _, set := range []bool{c.CatalogFile != "", c.PriceService != "", c.Catalog != nil} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		errs = append(errs, errors.New("catalog: give exactly one of --catalog FILE and --price-service ADDR; prices never come from the caller"))
	}
	if c.PriceService != "" {
		if err := rpc.CheckAddr("price-service", c.PriceService); err != nil {
			errs = append(errs, err)
		}
	}
	if (c.PriceServiceCert == "") != (c.PriceServiceKey == "") {
		errs = append(errs, errors.New("price-service-cert and price-service-key: give both or neither"))
	}
	if c.PriceServiceCert != "" && c.PriceServiceCA == "" {
		errs = append(errs, errors.New("price-service-cert: needs --price-service-ca (a client certificate is only sent over TLS)"))
	}
	if (c.PriceServiceCA != "" || c.PriceServiceCert != "") && c.PriceService == "" {
		errs = append(errs, errors.New("price-service-ca, price-service-cert: need --price-service"))
	}
	if c.PriceTimeout < 0 {
		errs = append(errs, fmt.Errorf("price-timeout %v: must not be negative", c.PriceTimeout))
	}
	if err := c.RateLimit.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("rate limit: %w", err))
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
		slog.String("catalog", c.CatalogFile),
		slog.String("price_service", c.PriceService),
		slog.Bool("price_service_tls", c.PriceServiceCA != ""),
		slog.Bool("price_service_mtls", c.PriceServiceCert != ""),
		slog.Duration("price_timeout", c.PriceTimeout),
		slog.Float64("rate_limit", c.RateLimit.PerSecond),
		slog.Int("rate_burst", c.RateLimit.Burst),
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
	fs.StringVar(&c.CatalogFile, "catalog", "CART_CATALOG", "",
		`JSON price list, {"products":[{"product_id":…,"unit_price":{…}}]}, reloaded when it changes`)
	fs.StringVar(&c.PriceService, "price-service", "CART_PRICE_SERVICE", "", "host:port of a cart.v1.PriceService")
	fs.StringVar(&c.PriceServiceCA, "price-service-ca", "CART_PRICE_SERVICE_CA", "",
		"PEM CA bundle: reach --price-service over TLS, trusting it")
	fs.StringVar(&c.PriceServiceCert, "price-service-cert", "CART_PRICE_SERVICE_CERT", "",
		"PEM client certificate presented to --price-service (mTLS; with --price-service-key and --price-service-ca)")
	fs.StringVar(&c.PriceServiceKey, "price-service-key", "CART_PRICE_SERVICE_KEY", "", "PEM private key of --price-service-cert")
	fs.DurationVar(&c.PriceTimeout, "price-timeout", "CART_PRICE_TIMEOUT", DefaultPriceTimeout, "longest a price lookup may take")
	fs.Float64Var(&c.RateLimit.PerSecond, "rate-limit", "CART_RATE_LIMIT", DefaultRatePerSecond,
		"commands per second per principal (token bucket); 0: off")
	fs.IntVar(&c.RateLimit.Burst, "rate-burst", "CART_RATE_BURST", DefaultRateBurst, "commands a principal may send at once")
}
