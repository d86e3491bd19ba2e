// Command query-svc serves the cart query API (cart.v1.CartQueryService):
// it projects the cart events of EventStoreDB into a MongoDB read model and
// answers queries from it. It is configured by flags with environment
// variables as fallbacks (see -help), logs to stderr and stops gracefully on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/acme/cart/internal/envflag"
	"github.com/acme/cart/internal/logconfig"
	"github.com/acme/cart/internal/query"
	"github.com/acme/cart/internal/querysvc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "query-svc:", err)
		os.Exit(1)
	}
}

// config is the command's configuration: the service's own plus logging.
type config struct {
	Service   querysvc.Config
	LogLevel  string
	LogFormat string
}

// parseConfig reads flags, with environment variables as fallbacks and
// defaults below both, and validates the result, reporting every problem
// (bad environment values included) at once.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := envflag.New(getenv)
	str, dur := env.String, env.Duration

	var cfg config
	s := &cfg.Service
	fs := flag.NewFlagSet("query-svc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.Listen, "listen", str("CART_QUERY_LISTEN", querysvc.DefaultListen),
		"host:port of the gRPC query API (env CART_QUERY_LISTEN)")
	fs.StringVar(&s.ESDBURL, "esdb", str("CART_ESDB_URL", querysvc.DefaultESDBURL),
		"EventStoreDB connection string, esdb:// or esdb+discover:// (env CART_ESDB_URL)")
	fs.StringVar(&s.MongoURI, "mongo-uri", str("CART_MONGO_URI", querysvc.DefaultMongoURI),
		"MongoDB connection string of the read model (env CART_MONGO_URI)")
	fs.StringVar(&s.MongoDB, "mongo-db", str("CART_MONGO_DB", querysvc.DefaultMongoDB),
		"MongoDB database of the read model (env CART_MONGO_DB)")
	fs.StringVar(&s.AdminListen, "admin-listen", str("CART_ADMIN_LISTEN", ""),
		"host:port of the admin API (CartAdminService); empty: off (env CART_ADMIN_LISTEN)")
	fs.DurationVar(&s.MaxWait, "max-wait", dur("CART_QUERY_MAX_WAIT", query.DefaultMaxWait),
		"longest GetCart waits for min_version, whatever the caller's deadline (env CART_QUERY_MAX_WAIT)")
	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", dur("CART_SHUTDOWN_TIMEOUT", querysvc.DefaultShutdownTimeout),
		"how long calls in flight may finish at shutdown (env CART_SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&s.HealthInterval, "health-interval", dur("CART_HEALTH_INTERVAL", querysvc.DefaultHealthInterval),
		"how often MongoDB and EventStoreDB are pinged for the health service (env CART_HEALTH_INTERVAL)")
	fs.StringVar(&cfg.LogLevel, "log-level", str("CART_LOG_LEVEL", "info"),
		"debug, info, warn or error (env CART_LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", str("CART_LOG_FORMAT", "json"),
		"json or text (env CART_LOG_FORMAT)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	var argErr error
	if fs.NArg() > 0 {
		argErr = fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return cfg, errors.Join(env.Err(), argErr, cfg.Validate())
}

// Validate reports every problem at once.
func (c config) Validate() error {
	return errors.Join(logconfig.Validate(c.LogLevel, c.LogFormat), c.Service.Validate())
}

// logger builds the service's logger as configured (validated before).
func (c config) logger(w io.Writer) *slog.Logger {
	return logconfig.New(w, c.LogLevel, c.LogFormat)
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	return querysvc.Run(ctx, cfg.Service, cfg.logger(stderr).With("service", "query-svc"))
}
