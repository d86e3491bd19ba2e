package querysvc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/acme/cart/internal/admin"
	"github.com/acme/cart/internal/api/adminapi"
	"github.com/acme/cart/internal/api/queryapi"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/metrics"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/query"
	"github.com/acme/cart/internal/readmodel"
	"github.com/acme/cart/internal/readside"
	"github.com/acme/cart/internal/tracing"
	cartv1 "github.com/acme/cart/proto/cart/v1"
	"google.golang.org/grpc"
)

// closeTimeout bounds closing the MongoDB client at shutdown.
const closeTimeout = 5 * time.Second

// Run serves the query API and runs the projector until ctx ends, then shuts
// down gracefully: health NOT_SERVING, calls still answered for Drain,
// calls in flight finish (up to ShutdownTimeout), the projector flushes its
// batch and checkpoint, and the clients close. GetCart's health names are
// NOT_SERVING until the projector has caught up and while it lags by more
// than MaxLag; the history names follow EventStoreDB (see HealthGetCart). It returns nil after a requested shutdown, or the error
// that stopped the service. Empty fields of cfg get their defaults.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	cfg = cfg.WithDefaults()
	// Run owns the listeners it is given: close them if it fails before
	// serving on them.
	serving := false
	defer func() {
		if !serving {
			for _, l := range []net.Listener{cfg.Listener, cfg.AdminListener, cfg.MetricsListener} {
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
	m := metrics.New()
	// Opened first so that it closes last: the projector's final flush
	// is traced too.
	tp, err := tracing.Open(ctx, "query-svc", cfg.TracerProvider)
	if err != nil {
		return fmt.Errorf("query-svc: %w", err)
	}
	log.Info("tracing", "exporter", tp.Exporter)
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("flushing the last spans", "err", err)
		}
	}()

	es, err := eventstore.Open(ctx, cfg.ESDBURL, log.With("component", "eventstore"), eventstore.WithTracerProvider(tp))
	if err != nil {
		return fmt.Errorf("query-svc: %w", err)
	}
	es.ObserveCalls(m.StoreCalls(metrics.StoreEventStore))
	defer func() {
		if err := es.Close(); err != nil {
			log.Warn("closing the EventStoreDB client", "err", err)
		}
	}()
	var rmOpts readmodel.Options
	if cfg.ReadModel != nil {
		rmOpts = *cfg.ReadModel
	}
	rmOpts.Observe = m.StoreCalls(metrics.StoreMongoDB)
	rmOpts.TracerProvider = tp
	mongo, err := readmodel.ConnectWith(ctx, cfg.MongoURI, rmOpts)
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
	// The read model in use is a switchable collection (admin.Live): a
	// rebuild builds a fresh one and switches readers and the projector
	// over. Events the projector cannot apply go to the parking lot.
	catalog := mongo.Catalog(cfg.MongoDB)
	parking := mongo.ParkingLot(cfg.MongoDB)
	notifier := projection.NewNotifier()
	// One projector per read model: the replica holding the lease runs it,
	// with its writes fenced by the lease; the others serve reads.
	lease := mongo.Lease(cfg.MongoDB, ProjectorLease, holderID(cfg.LeaseHolder), cfg.LeaseTTL)
	log.Info("projector lease", "holder", lease.ID(), "lease", ProjectorLease, "ttl", cfg.LeaseTTL)
	live, err := readside.New(readside.Config{
		Catalog: catalog,
		Open:    func(carts string) readside.CartStore { return catalog.Store(carts) },
		Projection: projection.Config{
			Source:         es,
			Decode:         cfg.Decode,
			Parker:         parking,
			Notifier:       notifier,
			Observer:       m.Projection(),
			TracerProvider: tp,
			Log:            log.With("component", "projection"),
			CacheBytes:     cfg.ProjectorCacheBytes,
		},
		FollowInterval: cfg.FollowInterval,
		Log:            log.With("component", "readmodel"),
		Lease:          lease,
		LeaseTTL:       cfg.LeaseTTL,
		OpenFenced: func(carts string) projection.Store {
			return catalog.Store(carts).Fenced(lease)
		},
		ProgressInterval: cfg.ProgressInterval,
	})
	if err != nil {
		return fmt.Errorf("query-svc: %w", err)
	}
	m.ProjectionGauges(projectionState(live, parking))
	if cfg.LiveStarted != nil {
		cfg.LiveStarted(live)
	}
	queries := &query.Service{Carts: live, Waiter: live, MaxWait: cfg.MaxWait, Events: es}

	lis, err := cfg.Bind()
	if err != nil {
		return fmt.Errorf("query-svc: %w", err)
	}
	sec, err := cfg.Security.Build(ctx, log.With("component", "auth"))
	if err != nil {
		return fmt.Errorf("query-svc: %w", err)
	}
	sec.ObserveUnary, sec.ObserveStream = []grpc.UnaryServerInterceptor{m.UnaryInterceptor()}, []grpc.StreamServerInterceptor{m.StreamInterceptor()}
	srv, hs := rpc.NewServer(log.With("component", "grpc"), sec, append(cfg.ServerOptions(), tracing.ServerOptions(tp)...)...)
	cartv1.RegisterCartQueryServiceServer(srv, queryapi.New(queries, log))
	m.InitializeServer(srv)
	endpoints := []rpc.Endpoint{{Name: "query", Server: srv, Health: hs, Listener: lis}}
	// Each health name depends only on what its calls need (health.go).
	healths := healthGroups(hs, mongo.Ping, es.Ping, func() bool { return live.Collection() != "" }, newFreshness(live.Progress, cfg.MaxLag))

	// The admin API: its own server on its own address, off by default.
	var ops *admin.Service
	if cfg.AdminListener != nil || cfg.AdminListen != "" {
		if ops, err = admin.New(admin.Config{Live: live, Parking: parking, Events: es, Retirements: catalog, Log: log.With("component", "admin")}); err != nil {
			return fmt.Errorf("query-svc: %w", err)
		}
		adminLis := cfg.AdminListener
		if adminLis == nil {
			if adminLis, err = net.Listen("tcp", cfg.AdminListen); err != nil {
				return fmt.Errorf("query-svc: admin listen: %w", err)
			}
		}
		adminSrv, adminHS := rpc.NewServer(log.With("component", "admin-grpc"), sec, append(cfg.ServerOptions(), tracing.ServerOptions(tp)...)...)
		cartv1.RegisterCartAdminServiceServer(adminSrv, adminapi.New(ops, log.With("component", "admin")))
		m.InitializeServer(adminSrv)
		// The admin server stops first: an operation in flight is abandoned
		// before the query API stops.
		endpoints = append([]rpc.Endpoint{{Name: "admin", Server: adminSrv, Health: adminHS, Listener: adminLis}}, endpoints...)
		healths = append(healths, rpc.HealthGroup{Server: adminHS, Names: []string{"", cartv1.CartAdminService_ServiceDesc.ServiceName},
			Checks: []rpc.HealthCheck{{Name: "mongodb", Check: mongo.Ping}, {Name: "eventstoredb", Check: es.Ping}}})
	}

	var companions []func(context.Context) // outlive the servers' stop
	background := []func(context.Context){func(ctx context.Context) {
		rpc.HealthMonitor{Interval: cfg.HealthInterval, Log: log, Groups: healths, Report: reportProgress(log, live.Progress)}.Run(ctx)
	}}
	metricsLis, err := cfg.BindMetrics()
	if err != nil {
		return fmt.Errorf("query-svc: %w", err)
	}
	if metricsLis != nil {
		companions = append(companions, m.Task(metricsLis, cfg.Pprof, log.With("component", "metrics")))
	}

	liveCtx, stopLive := context.WithCancel(context.WithoutCancel(ctx))
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		_ = live.Run(liveCtx) // returns only when stopped; failures are retried inside
	}()
	serving = true
	runErr := rpc.Lifecycle{
		Log:             log,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Drain:           cfg.Drain,
		Endpoints:       endpoints,
		Background:      background,
		Companions:      companions,
		Stopping: func() {
			if ops != nil {
				// A rebuild not yet switched is abandoned (its collection
				// dropped, the live projector restarted where it was)
				// before Live stops.
				ops.Close()
			}
		},
	}.Run(ctx)
	// The projector flushes its batch and checkpoint after the servers
	// stopped, then the clients close (deferred above).
	stopLive()
	<-liveDone
	pr := live.Progress()
	log.Info("query-svc stopped", "collection", live.Collection(), "checkpoint", positionString(pr.Checkpoint), "events_processed", pr.EventsProcessed)
	if runErr != nil {
		return fmt.Errorf("query-svc: %w", runErr)
	}
	return nil
}

// reportProgress logs the projection's progress with each health check:
// where it is when the service turns SERVING, and at debug level always.
func reportProgress(log *slog.Logger, progress func() projection.Progress) func(serving, changed bool) {
	return func(serving, changed bool) {
		pr := progress()
		if serving && changed {
			log.Info("projection at", "checkpoint", positionString(pr.Checkpoint), "caught_up", pr.CaughtUp)
		}
		log.Debug("projection progress", "checkpoint", positionString(pr.Checkpoint), "caught_up", pr.CaughtUp,
			"lag_events", pr.LagEvents, "lag", pr.Lag(time.Now()),
			"events_processed", pr.EventsProcessed, "events_parked", pr.EventsParked, "reconnects", pr.Reconnects)
	}
}

func positionString(p *eventlog.Position) string {
	if p == nil {
		return "none"
	}
	return p.String()
}
