// Command cartstack runs the whole cart product in one process on embedded
// stores: the EventStoreDB stand-in, an embedded FerretDB, command-svc and
// query-svc (with its admin API). It is how a newcomer tries the product:
//
//	go run ./cmd/dev/cartstack
//
// Data lives under ./.data (git-ignored); Ctrl-C stops everything cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/dev/stack"
)

func main() {
	cli.Main("cartstack", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stdout, os.Stderr) })
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cartstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg stack.Config
	fs.StringVar(&cfg.CommandListen, "command-listen", env("CART_COMMAND_LISTEN", stack.DefaultCommandListen), "command-svc gRPC address (env CART_COMMAND_LISTEN)")
	fs.StringVar(&cfg.QueryListen, "query-listen", env("CART_QUERY_LISTEN", stack.DefaultQueryListen), "query-svc gRPC address (env CART_QUERY_LISTEN)")
	fs.StringVar(&cfg.AdminListen, "admin-listen", env("CART_ADMIN_LISTEN", stack.DefaultAdminListen), "query-svc admin API address, empty for off (env CART_ADMIN_LISTEN)")
	fs.StringVar(&cfg.ESDBListen, "esdb-listen", env("CART_ESDB_LISTEN", stack.DefaultESDBListen), "EventStoreDB stand-in address (env CART_ESDB_LISTEN)")
	fs.StringVar(&cfg.MongoListen, "mongo-listen", env("CART_MONGO_LISTEN", stack.DefaultMongoListen), "embedded FerretDB address (env CART_MONGO_LISTEN)")
	fs.StringVar(&cfg.CommandMetricsListen, "command-metrics-listen", env("CART_COMMAND_METRICS_LISTEN", stack.DefaultCommandMetricsListen),
		"command-svc /metrics address, empty for off (env CART_COMMAND_METRICS_LISTEN)")
	fs.StringVar(&cfg.QueryMetricsListen, "query-metrics-listen", env("CART_QUERY_METRICS_LISTEN", stack.DefaultQueryMetricsListen),
		"query-svc /metrics address, empty for off (env CART_QUERY_METRICS_LISTEN)")
	fs.BoolVar(&cfg.Pprof, "pprof", true, "serve pprof under /debug/pprof/ on the metrics listeners (loopback by default)")
	fs.StringVar(&cfg.DataDir, "data-dir", env("CART_DATA_DIR", stack.DefaultDataDir), "where the stores keep their data (env CART_DATA_DIR)")
	fs.BoolVar(&cfg.ESDBInMemory, "esdb-in-memory", false, "keep events in memory only (lost at exit)")
	level := fs.String("log-level", env("CART_LOG_LEVEL", "info"), "debug, info, warn or error (env CART_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if err := s.WaitReady(ctx); err != nil {
		return errors.Join(err, s.Close())
	}
	fmt.Fprintf(stdout, `cart is running:
  command-svc    %s   (cart.v1.CartCommandService)
  query-svc      %s   (cart.v1.CartQueryService)
  admin          %s   (cart.v1.CartAdminService, cart:admin tokens)
  EventStoreDB   %s   (stand-in)
  MongoDB        %s   (FerretDB)
  metrics        %s   (command-svc)
  metrics        %s   (query-svc)
  data           %s
  prices         %s   (edit it: command-svc reloads it)
  tokens         make token SUB=alice [SCOPE='cart:any cart:admin']   (dev key in %s)

Try:
  TOKEN=$(make -s token SUB=alice)
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"product_id":"sku-1","quantity":2}' %s cart.v1.CartCommandService/AddItem
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"min_version":0}' %s cart.v1.CartQueryService/GetCart

Ctrl-C stops everything.
`, s.CommandAddr, s.QueryAddr, orOff(s.AdminAddr), s.ESDBURL, s.MongoURI,
		metricsURL(s.CommandMetricsAddr, cfg.Pprof), metricsURL(s.QueryMetricsAddr, cfg.Pprof), dataDir(cfg), s.CatalogFile,
		filepath.Dir(s.Tokens.JWKSPath()), s.CommandAddr, s.QueryAddr)

	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "stopping…")
	case <-s.Failed():
	}
	return s.Close()
}

func orOff(addr string) string {
	if addr == "" {
		return "off"
	}
	return addr
}

func dataDir(cfg stack.Config) string {
	if cfg.ESDBInMemory {
		return cfg.DataDir + " (events in memory)"
	}
	return cfg.DataDir
}

// metricsURL is what to scrape (or open) on a metrics listener.
func metricsURL(addr string, pprof bool) string {
	if addr == "" {
		return "off"
	}
	u := "http://" + addr + "/metrics"
	if pprof {
		u += "  http://" + addr + "/debug/pprof/"
	}
	return u
}
