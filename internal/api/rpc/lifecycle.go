package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
)

// Endpoint is one gRPC server of a service, with its health server and the
// listener it serves on.
type Endpoint struct {
	// Name says which API it serves, for the logs ("query", "admin").
	Name     string
	Server   *grpc.Server
	Health   *health.Server
	Listener net.Listener
}

// Lifecycle is how every service serves and stops, written once: serve
// every endpoint and run the background tasks until ctx ends or a server
// fails; then report NOT_SERVING on every endpoint first (so balancers
// drain), stop the background tasks, keep serving for Drain (a requested
// stop only), call Stopping, and stop the servers one by one, letting
// calls in flight finish for up to ShutdownTimeout.
type Lifecycle struct {
	Log             *slog.Logger
	ShutdownTimeout time.Duration
	// Drain is how long the servers keep answering after every health name
	// went NOT_SERVING, before they stop taking calls: balancers and
	// clients that watch health need that long to stop sending calls here,
	// which would otherwise fail. Zero: stop at once.
	Drain time.Duration
	// Endpoints are stopped in this order.
	Endpoints []Endpoint
	// Background tasks (the health monitor) run beside the servers with a
	// context that ends when the stop begins; the stop waits for them.
	Background []func(ctx context.Context)
	// Companions run beside the servers too, but their context ends only
	// after the last server stopped: the metrics listener is one, so that
	// the drain and the stop can still be scraped.
	Companions []func(ctx context.Context)
	// Stopping, if set, runs after every endpoint is NOT_SERVING and
	// before the servers stop (e.g. abandon an admin operation).
	Stopping func()
}

// Run serves until ctx ends or a server fails. It returns nil after a
// requested stop, or the error that stopped a server.
func (lc Lifecycle) Run(ctx context.Context) error {
	log := lc.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bgCtx, stopBG := context.WithCancel(ctx)
	var bg sync.WaitGroup
	for _, task := range lc.Background {
		bg.Go(func() { task(bgCtx) })
	}
	compCtx, stopComp := context.WithCancel(context.WithoutCancel(ctx))
	var comp sync.WaitGroup
	for _, task := range lc.Companions {
		comp.Go(func() { task(compCtx) })
	}
	serveErr := make(chan error, len(lc.Endpoints))
	for _, e := range lc.Endpoints {
		go func() {
			if err := e.Server.Serve(e.Listener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				serveErr <- fmt.Errorf("%s API: serve: %w", e.Name, err)
				return
			}
			serveErr <- nil
		}()
		log.Info("serving", "api", e.Name, "addr", e.Listener.Addr().String())
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-serveErr:
		log.Error("a server stopped; shutting down", "err", runErr)
	}
	for _, e := range lc.Endpoints {
		e.Health.Shutdown() // NOT_SERVING first, and no monitor can undo it
	}
	stopBG()
	bg.Wait()
	if runErr == nil && lc.Drain > 0 {
		log.Info("draining: NOT_SERVING, still answering calls", "drain", lc.Drain)
		t := time.NewTimer(lc.Drain)
		select {
		case <-t.C:
			log.Info("drain over; stopping the servers")
		case runErr = <-serveErr:
			t.Stop()
			log.Error("a server stopped while draining", "err", runErr)
		}
	}
	if lc.Stopping != nil {
		lc.Stopping()
	}
	for _, e := range lc.Endpoints {
		GracefulStop(e.Server, e.Health, lc.ShutdownTimeout)
	}
	stopComp()
	comp.Wait()
	return runErr
}
