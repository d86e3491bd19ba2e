package commandsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"

	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/grpcapi"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// Run serves the command API until ctx ends, then shuts down gracefully:
// health NOT_SERVING, calls in flight finish (up to ShutdownTimeout), the
// EventStoreDB client closes. It returns nil after a requested shutdown, or
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

	store, err := eventstore.Open(ctx, cfg.ESDBURL, log.With("component", "eventstore"))
	if err != nil {
		return fmt.Errorf("command-svc: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Warn("closing the EventStoreDB client", "err", err)
		}
	}()
	handler := command.NewHandler(store, command.Options{
		SnapshotEvery: cfg.SnapshotEvery,
		Log:           log.With("component", "command"),
	})

	lis := cfg.Listener
	if lis == nil {
		if lis, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("command-svc: listen: %w", err)
		}
	}
	srv, hs := grpcapi.NewServer(log.With("component", "grpc"))
	cartv1.RegisterCartCommandServiceServer(srv, grpcapi.NewCommandServer(handler, log))

	healthCtx, stopHealth := context.WithCancel(ctx)
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		grpcapi.MonitorHealth(healthCtx, cfg.HealthInterval, log,
			[]grpcapi.HealthTarget{{Server: hs, Service: cartv1.CartCommandService_ServiceDesc.ServiceName}}, nil, store.Ping)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	log.Info("command-svc serving", "addr", lis.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("command-svc shutting down")
	case err := <-serveErr:
		runErr = fmt.Errorf("command-svc: serve: %w", err)
	}
	stopHealth()
	<-healthDone
	grpcapi.GracefulStop(srv, hs, cfg.ShutdownTimeout)
	log.Info("command-svc stopped")
	if errors.Is(runErr, grpc.ErrServerStopped) {
		runErr = nil
	}
	return runErr
}
