package querysvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/grpcapi"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/projection/esdbsource"
	"github.com/acme/cart/internal/query"
	"github.com/acme/cart/internal/readmodel"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// pingTimeout bounds each health probe of a backing store.
const pingTimeout = 2 * time.Second

// closeTimeout bounds closing the MongoDB client at shutdown.
const closeTimeout = 5 * time.Second

// Run serves the query API and runs the projector until ctx ends, then shuts
// down gracefully: health NOT_SERVING, calls in flight finish (up to
// ShutdownTimeout), the projector flushes its batch and checkpoint, and the
// clients close. It returns nil after a requested shutdown, or the error
// that stopped the service. Empty fields of cfg get their defaults.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	cfg = cfg.WithDefaults()
	// Run owns the listeners it is given: close them if it fails before
	// serving on them.
	serving := false
	defer func() {
		if !serving {
			for _, l := range []net.Listener{cfg.Listener, cfg.AdminListener} {
				if l != nil {
					_ = l.Close()
				}
			}
		}
	}()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("query-svc starting", "config", cfg)

	es, err := eventstore.Open(ctx, cfg.ESDBURL, log.With("component", "eventstore"))
	if err != nil {
		return fmt.Errorf("query-svc: %w", err)
	}
	defer func() {
		if err := es.Close(); err != nil {
			log.Warn("closing the EventStoreDB client", "err", err)
		}
	}()
	mongo, err := readmodel.Connect(ctx, cfg.MongoURI)
	if err != nil {
		return fmt.Errorf("query-svc: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		if err := mongo.Close(cctx); err != nil {
			log.Warn("closing the MongoDB client", "err", err)
		}
	}()
	store := mongo.Store(cfg.MongoDB, readmodel.Collections{})

	notifier := projection.NewNotifier()
	projector, err := projection.New(projection.Config{
		Source:   esdbsource.New(es),
		Store:    store,
		Notifier: notifier,
		Log:      log.With("component", "projection"),
	})
	if err != nil {
		return fmt.Errorf("query-svc: %w", err)
	}
	queries := &query.Service{Carts: store, Waiter: notifier, MaxWait: cfg.MaxWait, Events: es}

	lis := cfg.Listener
	if lis == nil {
		if lis, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("query-svc: listen: %w", err)
		}
	}
	srv, hs := grpcapi.NewServer(log.With("component", "grpc"))
	cartv1.RegisterCartQueryServiceServer(srv, grpcapi.NewQueryServer(queries, log))
	if cfg.AdminListener != nil {
		log.Warn("admin API not available in this version; closing its listener", "admin_listen", cfg.AdminListener.Addr().String())
		_ = cfg.AdminListener.Close()
		cfg.AdminListener = nil
	} else if cfg.AdminListen != "" {
		log.Warn("admin API not available in this version; admin-listen ignored", "admin_listen", cfg.AdminListen)
	}

	projCtx, stopProjector := context.WithCancel(context.WithoutCancel(ctx))
	projDone := make(chan struct{})
	go func() {
		defer close(projDone)
		_ = projector.Run(projCtx) // returns only when stopped; failures are retried inside
	}()
	healthCtx, stopHealth := context.WithCancel(ctx)
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		monitorHealth(healthCtx, hs, cfg.HealthInterval, log, projector, mongo.Ping, es.Ping)
	}()
	serving = true
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	log.Info("query-svc serving", "addr", lis.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("query-svc shutting down")
	case err := <-serveErr:
		runErr = fmt.Errorf("query-svc: serve: %w", err)
	}
	stopHealth()
	<-healthDone
	grpcapi.GracefulStop(srv, hs, cfg.ShutdownTimeout)
	stopProjector()
	<-projDone
	pr := projector.Progress()
	log.Info("query-svc stopped", "checkpoint", positionString(pr.Checkpoint), "events_processed", pr.EventsProcessed)
	if errors.Is(runErr, grpc.ErrServerStopped) {
		runErr = nil
	}
	return runErr
}

// monitorHealth reports SERVING while MongoDB and EventStoreDB both answer,
// NOT_SERVING otherwise, checking every interval until ctx ends.
func monitorHealth(ctx context.Context, hs *health.Server, interval time.Duration, log *slog.Logger,
	projector *projection.Projector, pings ...func(context.Context) error) {
	serving := false
	check := func() {
		var errs []error
		for _, ping := range pings {
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			errs = append(errs, ping(pctx))
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		err := errors.Join(errs...)
		st := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		hs.SetServingStatus("", st)
		hs.SetServingStatus(cartv1.CartQueryService_ServiceDesc.ServiceName, st)
		pr := projector.Progress()
		switch {
		case err == nil && !serving:
			log.Info("health: serving", "checkpoint", positionString(pr.Checkpoint), "caught_up", pr.CaughtUp)
		case err != nil && serving:
			log.Warn("health: not serving", "err", err)
		case err != nil:
			log.Debug("health: still not serving", "err", err)
		}
		log.Debug("projection progress", "checkpoint", positionString(pr.Checkpoint), "caught_up", pr.CaughtUp,
			"events_processed", pr.EventsProcessed, "events_parked", pr.EventsParked, "reconnects", pr.Reconnects)
		serving = err == nil
	}
	check()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}

func positionString(p *projection.Position) string {
	if p == nil {
		return "none"
	}
	return p.String()
}
