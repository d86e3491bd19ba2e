package deploy_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/commandsvc"
	"github.com/acme/cart/internal/metrics"
	"github.com/acme/cart/internal/querysvc"
)

// The services' own code is the contract the deployment files are checked
// against: their configuration is parsed and validated by the functions
// cmd/command-svc and cmd/query-svc call (cli.ParseService with the
// service's Config), the environment variables a file may set are the ones
// those flags read, and the metrics the dashboard and alerts may use are
// the ones internal/metrics registers.

// parsedService is a service's configuration as its main would see it.
type parsedService struct {
	Server  rpc.ServerConfig
	Command commandsvc.Config // command-svc only
	Query   querysvc.Config   // query-svc only
}

// parseService parses and validates name's configuration from args and the
// environment, exactly as the service's main does; the error is what the
// service would refuse to start with. Values are returned even then.
func parseService(name string, args []string, getenv func(string) string) (parsedService, error) {
	switch name {
	case "command-svc":
		c, _, err := cli.ParseService[commandsvc.Config](name, args, getenv, io.Discard)
		return parsedService{Server: c.ServerConfig, Command: c}, err
	case "query-svc":
		c, _, err := cli.ParseService[querysvc.Config](name, args, getenv, io.Discard)
		return parsedService{Server: c.ServerConfig, Query: c}, err
	}
	return parsedService{}, fmt.Errorf("unknown service %s", name)
}

// serviceEnvNames are the environment variables each service's flags fall
// back to, recorded by parsing its configuration with a getenv that notes
// every name it is asked for.
var serviceEnvNames = sync.OnceValue(func() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for svc := range grpcPort {
		names := map[string]bool{}
		_, _ = parseService(svc, nil, func(k string) string { names[k] = true; return "" })
		out[svc] = names
	}
	return out
})

// TestServiceEnvNames proves that the recording above sees the flags: the
// shared ones on both services, the service's own on it alone.
func TestServiceEnvNames(t *testing.T) {
	names := serviceEnvNames()
	for _, svc := range slices.Sorted(maps.Keys(grpcPort)) {
		for _, k := range []string{"CART_ESDB_URL", "CART_DRAIN", "CART_SHUTDOWN_TIMEOUT", "CART_REFLECTION",
			"CART_AUTH_JWKS", "CART_INSECURE_NO_AUTH", "CART_METRICS_LISTEN", "CART_LOG_FORMAT"} {
			if !names[svc][k] {
				t.Errorf("%s: no flag reads %s", svc, k)
			}
		}
	}
	if !names["command-svc"]["CART_CATALOG"] || names["query-svc"]["CART_CATALOG"] {
		t.Error("CART_CATALOG must be command-svc's alone")
	}
	if !names["query-svc"]["CART_MONGO_URI"] || names["command-svc"]["CART_MONGO_URI"] {
		t.Error("CART_MONGO_URI must be query-svc's alone")
	}
}

// imageEnv is the environment the Dockerfile's target gives its containers
// (ENV of the target and the stages it is built FROM).
func imageEnv(t *testing.T, target string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range stageLineage(t, target) {
		if in.cmd != "ENV" {
			continue
		}
		for _, kv := range splitQuoted(in.args) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("%s: ENV %q: only the key=value form is understood here", target, in.args)
			}
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env
}

// splitQuoted splits on spaces outside double quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// exportedSeries are the series names the services export, as PromQL sees
// them (a histogram as name_bucket, name_sum and name_count, a summary as
// name, name_sum and name_count), taken from the registry internal/metrics
// builds: metrics.New() with every collector the two services add, each
// hook called once so that every vector has a series, and the gRPC server
// metrics initialised for a service. Every cart_* and grpc_* family the
// registry describes must show up in the gathered output, so a collector
// that is registered but not exercised here fails instead of being missed.
var exportedSeries = sync.OnceValues(func() (map[string]bool, error) {
	m := metrics.New()
	cmds := m.Commands()
	cmds.CommandDone("AddItem", "ok")
	cmds.Conflict("AddItem")
	cmds.RetriesExhausted("AddItem")
	m.StoreCalls(metrics.StoreEventStore)("append", time.Millisecond, nil)
	proj := m.Projection()
	proj.Flushed(1, 1, 0, 0, time.Millisecond)
	proj.Resubscribed()
	m.ProjectionGauges(metrics.ProjectionState{
		Checkpoint: func() uint64 { return 1 },
		Lag:        func() (int64, time.Duration) { return 0, 0 },
		Parked:     func(context.Context) (int64, error) { return 0, nil },
		Active:     func() bool { return true },
	})
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	m.InitializeServer(srv)

	reg := m.Registry()
	fams, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	out := map[string]bool{}
	gathered := map[string]bool{}
	for _, f := range fams {
		name := f.GetName()
		gathered[name] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[name], out[name+"_sum"], out[name+"_count"] = true, true, true
		default:
			out[name] = true
		}
	}
	descs := make(chan *prometheus.Desc)
	go func() { reg.Describe(descs); close(descs) }()
	var missing []string
	described := 0
	for d := range descs {
		mm := descName.FindStringSubmatch(d.String())
		if mm == nil {
			return nil, fmt.Errorf("cannot read the name of %s", d)
		}
		described++
		if name := mm[1]; (strings.HasPrefix(name, "cart_") || strings.HasPrefix(name, "grpc_")) && !gathered[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("registered but without a series here (call its hook in exportedSeries): %v", missing)
	}
	if described == 0 {
		return nil, fmt.Errorf("the registry describes no metric")
	}
	return out, nil
})

var descName = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)

// TestExportedSeries checks the names read from the code against a few the
// deployment files depend on, so that a failure to read them shows here.
func TestExportedSeries(t *testing.T) {
	got, err := exportedSeries()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"cart_commands_total", "cart_store_call_duration_seconds_bucket", "cart_projection_lag_seconds",
		"cart_projection_parked_events", "cart_projection_active", "grpc_server_handled_total",
		"grpc_server_handling_seconds_bucket", "grpc_server_handling_seconds_count",
	} {
		if !got[name] {
			t.Errorf("%s is not among the exported series", name)
		}
	}
	for _, name := range []string{"cart_commands_total_bucket", "cart_projection_lag_seconds_count"} {
		if got[name] {
			t.Errorf("%s: a counter or gauge has no %s", name, name[strings.LastIndexByte(name, '_'):])
		}
	}
}
