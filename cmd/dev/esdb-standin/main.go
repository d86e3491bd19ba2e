// Command esdb-standin runs the EventStoreDB-compatible stand-in server
// (internal/dev/standin) on its own, for local development and manual testing
// with the v4 client, grpcurl or the services. It prints the connection
// string it serves on stdout, logs to stderr and stops gracefully on SIGINT
// or SIGTERM.
//
// It is not EventStoreDB: see internal/dev/standin for what it implements.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/envflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "esdb-standin:", err)
		os.Exit(1)
	}
}

// config is the command's configuration: flags, with environment variables
// as fallbacks and defaults below both.
type config struct {
	Listen        string
	DataDir       string
	AdvertiseHost string
	LogLevel      string
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	envOr := envflag.New(getenv).String
	var cfg config
	fs := flag.NewFlagSet("esdb-standin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Listen, "listen", envOr("ESDB_STANDIN_LISTEN", "127.0.0.1:2113"),
		"host:port to serve gRPC on (env ESDB_STANDIN_LISTEN)")
	fs.StringVar(&cfg.DataDir, "data-dir", getenv("ESDB_STANDIN_DATA_DIR"),
		"directory for the event log; empty keeps events in memory (env ESDB_STANDIN_DATA_DIR)")
	fs.StringVar(&cfg.AdvertiseHost, "advertise-host", getenv("ESDB_STANDIN_ADVERTISE_HOST"),
		"host clients should connect to, reported by gossip; default: the listen host, or 127.0.0.1 (env ESDB_STANDIN_ADVERTISE_HOST)")
	fs.StringVar(&cfg.LogLevel, "log-level", envOr("ESDB_STANDIN_LOG_LEVEL", "info"),
		"debug, info, warn or error; debug logs every call (env ESDB_STANDIN_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return cfg, cfg.Validate()
}

// Validate reports every problem at once.
func (c config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("log level %q: %w", c.LogLevel, err))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated above
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	srv, err := standin.New(standin.Config{
		Listen:        cfg.Listen,
		DataDir:       cfg.DataDir,
		AdvertiseHost: cfg.AdvertiseHost,
		Logger:        logger,
	})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, srv.ConnectionString()); err != nil {
		_ = srv.Close()
		return fmt.Errorf("print connection string: %w", err)
	}
	return srv.Serve(ctx)
}
