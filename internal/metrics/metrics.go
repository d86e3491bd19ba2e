package metrics

import (
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
)

// latencyBuckets suit calls from a fraction of a millisecond (a cached
// read on loopback) to seconds (a store in trouble), for every latency
// histogram here, so their quantiles compare.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics is one service's registry and the collectors both services
// share: gRPC server metrics and store call latency. The per-side
// collectors are added by Commands and Projection.
type Metrics struct {
	reg        *prometheus.Registry
	grpc       *grpcprom.ServerMetrics
	storeCalls *prometheus.HistogramVec
}

// New returns a fresh registry with the Go runtime, process, gRPC server
// and store call collectors registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(
			grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(latencyBuckets)),
		),
		storeCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cart_store_call_duration_seconds",
			Help:    "Latency of calls to the stores: store eventstore (op append, read) and mongodb (op write, read).",
			Buckets: latencyBuckets,
		}, []string{"store", "op"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grpc,
		m.storeCalls,
	)
	return m
}

// Registry is what /metrics exposes; tests gather it directly.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// UnaryInterceptor counts and times every unary call
// (grpc_server_handled_total, grpc_server_handling_seconds, ...). It
// belongs right after the decode check and before logging, panic recovery
// and authentication, so that it sees the code the caller gets.
func (m *Metrics) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return m.grpc.UnaryServerInterceptor()
}

// StreamInterceptor is UnaryInterceptor for streaming calls.
func (m *Metrics) StreamInterceptor() grpc.StreamServerInterceptor {
	return m.grpc.StreamServerInterceptor()
}

// InitializeServer creates the zero series of every method registered on
// srv, so that a rate over a method that was never called is 0, not
// absent. Call it after the services are registered.
func (m *Metrics) InitializeServer(srv reflection.ServiceInfoProvider) {
	m.grpc.InitializeMetrics(srv)
}

// Store names of cart_store_call_duration_seconds.
const (
	StoreEventStore = "eventstore"
	StoreMongoDB    = "mongodb"
)

// StoreCalls returns the hook a store adapter calls after each call (op:
// append or read for the event store, write or read for MongoDB). Failed
// calls are timed too: a store that fails slowly is what the p99 panel is
// for.
func (m *Metrics) StoreCalls(store string) func(op string, d time.Duration, err error) {
	return func(op string, d time.Duration, _ error) {
		m.storeCalls.WithLabelValues(store, op).Observe(d.Seconds())
	}
}
