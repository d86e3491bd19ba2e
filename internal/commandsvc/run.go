package commandsvc

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/acme/cart/internal/api/commandapi"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/eventstore"
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

	lis, err := cfg.Bind()
	if err != nil {
		return fmt.Errorf("command-svc: %w", err)
	}
	srv, hs := rpc.NewServer(log.With("component", "grpc"))
	cartv1.RegisterCartCommandServiceServer(srv, commandapi.New(handler, log))
	err = rpc.Lifecycle{
		Log:             log,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Endpoints:       []rpc.Endpoint{{Name: "command", Server: srv, Health: hs, Listener: lis}},
		Background: []func(context.Context){func(ctx context.Context) {
			rpc.MonitorHealth(ctx, cfg.HealthInterval, log,
				[]rpc.HealthTarget{{Server: hs, Service: cartv1.CartCommandService_ServiceDesc.ServiceName}}, nil, store.Ping)
		}},
	}.Run(ctx)
	log.Info("command-svc stopped")
	if err != nil {
		return fmt.Errorf("command-svc: %w", err)
	}
	return nil
}
