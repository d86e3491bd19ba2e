package commandsvc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/acme/cart/internal/api/commandapi"
	"github.com/acme/cart/internal/api/guard"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/catalog/filecatalog"
	"github.com/acme/cart/internal/catalog/grpccatalog"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/metrics"
	"github.com/acme/cart/internal/tlsconfig"
	"github.com/acme/cart/internal/tracing"
	cartv1 "github.com/acme/cart/proto/cart/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// tracingShutdownTimeout bounds flushing the last spans at exit.
const tracingShutdownTimeout = 5 * time.Second

// Run serves the command API until ctx ends, then shuts down gracefully:
// health NOT_SERVING, calls still answered for Drain, calls in flight
// finish (up to ShutdownTimeout), the EventStoreDB client closes. It returns nil after a requested shutdown, or
// the error that stopped the service. Empty fields of cfg get their
// defaults. The service starts NOT_SERVING and is SERVING while EventStoreDB
// answers its pings, so it may start before the store does.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("command-svc starting", "config", cfg)
	m := metrics.New()
	tp, err := tracing.Open(ctx, "command-svc", cfg.TracerProvider)
	if err != nil {
		return fmt.Errorf("command-svc: %w", err)
	}
	log.Info("tracing", "exporter", tp.Exporter)
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingShutdownTimeout)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("flushing the last spans", "err", err)
		}
	}()

	store, err := eventstore.Open(ctx, cfg.ESDBURL, log.With("component", "eventstore"), eventstore.WithTracerProvider(tp))
	if err != nil {
		return fmt.Errorf("command-svc: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Warn("closing the EventStoreDB client", "err", err)
		}
	}()
	store.ObserveCalls(m.StoreCalls(metrics.StoreEventStore))
	prices, closePrices, err := openCatalog(cfg, tp, log.With("component", "catalog"))
	if err != nil {
		return fmt.Errorf("command-svc: %w", err)
	}
	defer closePrices()
	handler := command.NewHandler(store, command.Options{
		SnapshotEvery:  cfg.SnapshotEvery,
		PresumeNew:     true,
		Catalog:        prices,
		Log:            log.With("component", "command"),
		Observer:       m.Commands(),
		TracerProvider: tp,
	})
	sec, err := cfg.Security.Build(ctx, log.With("component", "auth"))
	if err != nil {
		return fmt.Errorf("command-svc: %w", err)
	}
	if cfg.RateLimit.Enabled() {
		if sec.Limiter, err = guard.NewLimiter(cfg.RateLimit, rpc.PrincipalKey,
			guard.InService(cartv1.CartCommandService_ServiceDesc.ServiceName), log.With("component", "ratelimit")); err != nil {
			return fmt.Errorf("command-svc: %w", err)
		}
	}

	lis, err := cfg.Bind()
	if err != nil {
		return fmt.Errorf("command-svc: %w", err)
	}
	sec.ObserveUnary, sec.ObserveStream = []grpc.UnaryServerInterceptor{m.UnaryInterceptor()}, []grpc.StreamServerInterceptor{m.StreamInterceptor()}
	srv, hs := rpc.NewServer(log.With("component", "grpc"), sec, append(cfg.ServerOptions(), tracing.ServerOptions(tp)...)...)
	cartv1.RegisterCartCommandServiceServer(srv, commandapi.New(handler, log))
	m.InitializeServer(srv)
	// Every command needs EventStoreDB, and nothing else is pinged: the
	// price catalog fails single commands (UNAVAILABLE), not the service.
	healths := []rpc.HealthGroup{{Server: hs, Names: []string{"", cartv1.CartCommandService_ServiceDesc.ServiceName},
		Checks: []rpc.HealthCheck{{Name: "eventstoredb", Check: store.Ping}}}}
	var companions []func(context.Context) // outlive the servers' stop
	background := []func(context.Context){func(ctx context.Context) {
		rpc.HealthMonitor{Interval: cfg.HealthInterval, Log: log, Groups: healths}.Run(ctx)
	}}
	metricsLis, err := cfg.BindMetrics()
	if err != nil {
		return fmt.Errorf("command-svc: %w", err)
	}
	if metricsLis != nil {
		companions = append(companions, m.Task(metricsLis, cfg.Pprof, log.With("component", "metrics")))
	}
	err = rpc.Lifecycle{
		Log:             log,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Drain:           cfg.Drain,
		Endpoints:       []rpc.Endpoint{{Name: "command", Server: srv, Health: hs, Listener: lis}},
		Background:      background,
		Companions:      companions,
	}.Run(ctx)
	log.Info("command-svc stopped")
	if err != nil {
		return fmt.Errorf("command-svc: %w", err)
	}
	return nil
}

// openCatalog opens where prices come from, and how to let it go at exit.
func openCatalog(cfg Config, tp trace.TracerProvider, log *slog.Logger) (command.Catalog, func(), error) {
	switch {
	case cfg.Catalog != nil:
		return cfg.Catalog, func() {}, nil
	case cfg.CatalogFile != "":
		c, err := filecatalog.Open(cfg.CatalogFile, log)
		if err != nil {
			return nil, nil, fmt.Errorf("catalog: %w", err)
		}
		return c, func() {}, nil
	default:
		creds := insecure.NewCredentials()
		if cfg.PriceServiceCA != "" {
			tc, err := tlsconfig.Client(cfg.PriceServiceCA, cfg.PriceServiceCert, cfg.PriceServiceKey)
			if err != nil {
				return nil, nil, fmt.Errorf("price service: %w", err)
			}
			creds = credentials.NewTLS(tc)
		}
		conn, err := grpc.NewClient(cfg.PriceService, append(tracing.DialOptions(tp), grpc.WithTransportCredentials(creds))...)
		if err != nil {
			return nil, nil, fmt.Errorf("price service: %w", err)
		}
		return grpccatalog.New(conn, cfg.PriceTimeout), func() { _ = conn.Close() }, nil
	}
}
