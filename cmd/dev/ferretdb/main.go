// Command ferretdb runs the project's embedded FerretDB (a MongoDB wire-protocol server on SQLite)
// on its own, for the local stack and for poking at the read model with mongosh. It exists
// because FerretDB's own command cannot be built with `go install` (its version file is missing
// from the module) and because this way it runs with exactly the settings the tests use.
//
// It prints the connection URI on stdout once the server answers a ping, then serves until
// SIGINT or SIGTERM.
//
//	go run ./cmd/dev/ferretdb --listen 127.0.0.1:27017 --data-dir ./.data/ferretdb
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/dev/embeddedmongo"
)

func main() {
	cli.Main("ferretdb", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr) })
}

// config is everything the program can be told; flags win over environment variables, which win
// over defaults.
type config struct {
	Listen  string
	DataDir string
	Verbose bool
}

// validate reports every problem at once so that a misconfigured start needs one fix, not several.
func (c config) validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("--listen (FERRETDB_LISTEN) must not be empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir (FERRETDB_DATA_DIR) must not be empty"))
	}
	return errors.Join(errs...)
}

// parseConfig reads flags with environment fallbacks.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	envOr := cli.NewEnv(getenv).String
	var c config
	fs := flag.NewFlagSet("ferretdb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Listen, "listen", envOr("FERRETDB_LISTEN", embeddedmongo.DefaultListen), "TCP address to serve the MongoDB wire protocol on (env FERRETDB_LISTEN)")
	fs.StringVar(&c.DataDir, "data-dir", envOr("FERRETDB_DATA_DIR", ".data/ferretdb"), "directory for the SQLite files, created if missing (env FERRETDB_DATA_DIR)")
	fs.BoolVar(&c.Verbose, "verbose", getenv("FERRETDB_VERBOSE") == "true", "log every connection and failed command at Info level (env FERRETDB_VERBOSE=true)")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("parse flags: unexpected arguments %q", fs.Args())
	}
	if err := c.validate(); err != nil {
		return config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// run starts the server, prints its URI on stdout and serves until ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	var logger *slog.Logger // nil: the package's quiet Warn-level default
	if cfg.Verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	srv, err := embeddedmongo.Start(ctx, embeddedmongo.Config{Listen: cfg.Listen, DataDir: cfg.DataDir, Logger: logger,
		// Collections created later (a rebuild's) get the _id index too.
		IndexInterval: time.Second})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if _, err := fmt.Fprintln(stdout, srv.URI()); err != nil {
		_ = srv.Close()
		return fmt.Errorf("print uri: %w", err)
	}

	<-ctx.Done()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
