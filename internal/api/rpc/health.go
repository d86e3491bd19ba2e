package rpc

import (
	"context"
	"errors"
	"fmt"
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
// after each check with its outcome, for service-specific logging. It is
// HealthMonitor with one group per target that depends on every check.
func MonitorHealth(ctx context.Context, interval time.Duration, log *slog.Logger, targets []HealthTarget,
	report func(serving, changed bool), checks ...func(context.Context) error) {
	var hc []HealthCheck
	for i, c := range checks {
		hc = append(hc, HealthCheck{Name: fmt.Sprintf("check %d", i+1), Check: c})
	}
	m := HealthMonitor{Interval: interval, Log: log, Report: report}
	for _, t := range targets {
		m.Groups = append(m.Groups, HealthGroup{Server: t.Server, Names: []string{"", t.Service}, Checks: hc})
	}
	m.Run(ctx)
}

// HealthCheck is one thing health names may depend on: a store's ping, or
// the freshness of a read model.
type HealthCheck struct {
	// Name says what is checked, in the logs ("mongodb", "eventstoredb").
	// Checks of one monitor with the same name are the same check: it runs
	// once per round however many groups depend on it.
	Name  string
	Check func(context.Context) error
}

// HealthGroup is health names of one server that depend on the same
// checks: the RPCs they stand for need those and nothing else, so that one
// store's outage takes out only the calls that need it.
type HealthGroup struct {
	Server *health.Server
	// Names are the health service names set ("" is the whole server).
	Names []string
	// Checks must all pass for SERVING; none means always SERVING.
	Checks []HealthCheck
}

// HealthMonitor sets each group's names SERVING while all of its checks
// pass and NOT_SERVING while one fails, checking at once and then every
// Interval until the context of Run ends.
type HealthMonitor struct {
	Interval time.Duration
	Log      *slog.Logger
	Groups   []HealthGroup
	// Report, if set, is called after each round: serving is whether every
	// group is SERVING, changed whether any group's state changed (true
	// after the first round).
	Report func(serving, changed bool)
}

// Run monitors until ctx ends. It logs each group's first state and every
// change, naming the failing checks.
func (m HealthMonitor) Run(ctx context.Context) {
	log := m.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	serving := make([]bool, len(m.Groups))
	first := true
	round := func() {
		results := map[string]error{}
		for _, g := range m.Groups {
			for _, c := range g.Checks {
				if _, done := results[c.Name]; done {
					continue
				}
				cctx, cancel := context.WithTimeout(ctx, HealthCheckTimeout)
				err := c.Check(cctx)
				cancel()
				if err != nil {
					err = fmt.Errorf("%s: %w", c.Name, err)
				}
				results[c.Name] = err
			}
		}
		if ctx.Err() != nil {
			return
		}
		all, anyChanged := true, first
		for i, g := range m.Groups {
			var errs []error
			for _, c := range g.Checks {
				errs = append(errs, results[c.Name])
			}
			err := errors.Join(errs...)
			st := healthpb.HealthCheckResponse_SERVING
			if err != nil {
				st = healthpb.HealthCheckResponse_NOT_SERVING
			}
			for _, n := range g.Names {
				g.Server.SetServingStatus(n, st)
			}
			changed := first || (err == nil) != serving[i]
			switch {
			case err == nil && changed:
				log.Info("health: serving", "names", g.Names)
			case err != nil && changed:
				log.Warn("health: not serving; a dependency fails", "names", g.Names, "err", err)
			case err != nil:
				log.Debug("health: still not serving", "names", g.Names, "err", err)
			}
			serving[i] = err == nil
			all = all && serving[i]
			anyChanged = anyChanged || changed
		}
		first = false
		if m.Report != nil {
			m.Report(all, anyChanged)
		}
	}
	round()
	t := time.NewTicker(m.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			round()
		}
	}
}
