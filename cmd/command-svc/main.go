// Command command-svc serves the cart command API (cart.v1.CartCommandService):
// it turns commands into events in EventStoreDB, one stream per user. It is
// configured by flags with environment variables as fallbacks (see -help),
// logs to stderr and stops gracefully on SIGINT or SIGTERM.
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

	"github.com/acme/cart/internal/commandsvc"
	"github.com/acme/cart/internal/envflag"
	"github.com/acme/cart/internal/logconfig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "command-svc:", err)
		os.Exit(1)
	}
}

// config is the command's configuration: the service's own plus logging.
type config struct {
	Service   commandsvc.Config
	LogLevel  string
	LogFormat string
}

// parseConfig reads flags, with environment variables as fallbacks and
// defaults below both, and validates the result, reporting every problem
// (bad environment values included) at once.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := envflag.New(getenv)
	str, dur, num := env.String, env.Duration, env.Int

	var cfg config
	fs := flag.NewFlagSet("command-svc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Service.Listen, "listen", str("CART_COMMAND_LISTEN", commandsvc.DefaultListen),
		"host:port of the gRPC command API (env CART_COMMAND_LISTEN)")
	fs.StringVar(&cfg.Service.ESDBURL, "esdb", str("CART_ESDB_URL", commandsvc.DefaultESDBURL),
		"EventStoreDB connection string, esdb:// or esdb+discover:// (env CART_ESDB_URL)")
	fs.DurationVar(&cfg.Service.ShutdownTimeout, "shutdown-timeout", dur("CART_SHUTDOWN_TIMEOUT", commandsvc.DefaultShutdownTimeout),
		"how long calls in flight may finish at shutdown (env CART_SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&cfg.Service.HealthInterval, "health-interval", dur("CART_HEALTH_INTERVAL", commandsvc.DefaultHealthInterval),
		"how often EventStoreDB is pinged for the health service (env CART_HEALTH_INTERVAL)")
	fs.IntVar(&cfg.Service.SnapshotEvery, "snapshot-every", num("CART_SNAPSHOT_EVERY", 0),
		"events between cart snapshots; 0: the default (100), negative: none (env CART_SNAPSHOT_EVERY)")
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
	return commandsvc.Run(ctx, cfg.Service, cfg.logger(stderr).With("service", "command-svc"))
}
