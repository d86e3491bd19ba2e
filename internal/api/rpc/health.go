package rpc

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// HealthTarget is a health server and the gRPC service it reports for
// (besides the whole server, ""), so one monitor can drive the health of
// several servers of one process.
type HealthTarget struct {
	Server  *health.Server
	Service string
}

// HealthCheckTimeout bounds each probe of a backing store, so that a store
// that hangs reads as down rather than freezing the monitor.
const HealthCheckTimeout = 2 * time.Second

// MonitorHealth keeps every target SERVING while all checks answer and
// NOT_SERVING while one does not, checking at once and then every interval
// until ctx ends: balancers then stop sending calls that could only fail.
// It logs the first state and every change; report, when not nil, is called
// after each check with its outcome, for service-specific logging.
func MonitorHealth(ctx context.Context, interval time.Duration, log *slog.Logger, targets []HealthTarget,
	report func(serving, changed bool), checks ...func(context.Context) error) {
	serving, first := false, true
	check := func() {
		var errs []error
		for _, c := range checks {
			cctx, cancel := context.WithTimeout(ctx, HealthCheckTimeout)
			errs = append(errs, c(cctx))
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
		for _, t := range targets {
			t.Server.SetServingStatus("", st)
			t.Server.SetServingStatus(t.Service, st)
		}
		changed := first || (err == nil) != serving
		switch {
		case err == nil && changed:
			log.Info("health: serving")
		case err != nil && changed:
			log.Warn("health: not serving; a backing store does not answer", "err", err)
		case err != nil:
			log.Debug("health: still not serving", "err", err)
		}
		serving, first = err == nil, false
		if report != nil {
			report(serving, changed)
		}
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
