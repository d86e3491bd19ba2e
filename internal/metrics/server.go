package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timeouts of the metrics listener: a scrape is small and quick, but a
// CPU profile or trace streams for as long as its seconds parameter asks.
const (
	readHeaderTimeout = 5 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// Handler serves /metrics from m's registry and, with withPprof, the
// net/http/pprof handlers under /debug/pprof/. They are registered on a
// mux of their own, so importing net/http/pprof adds nothing reachable on
// http.DefaultServeMux.
func (m *Metrics) Handler(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A collector that fails leaves its series out instead of failing
		// the whole scrape.
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg, // promhttp_metric_handler_errors_total
		EnableOpenMetrics: true,
	}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index) // the named profiles: heap, goroutine, ...
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Serve serves h on lis until ctx ends, then shuts down, letting requests
// in flight finish for a few seconds. It is a background task of the
// service's lifecycle: a listener that fails is logged, not fatal, since
// the service keeps answering without its metrics.
func Serve(ctx context.Context, lis net.Listener, h http.Handler, log *slog.Logger) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout,
		// Failed handshakes (a plaintext scraper on a TLS listener) are
		// the caller's problem: the service's log at debug, not stderr.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	log.Info("serving", "api", "metrics", "addr", lis.Addr().String())
	select {
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
		return
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("metrics listener: shutdown", "err", err)
		_ = srv.Close()
	}
	<-done
}

// Task is Serve on lis as a background task of the service's lifecycle,
// with pprof when withPprof.
func (m *Metrics) Task(lis net.Listener, withPprof bool, log *slog.Logger) func(context.Context) {
	h := m.Handler(withPprof)
	return func(ctx context.Context) { Serve(ctx, lis, h, log) }
}
