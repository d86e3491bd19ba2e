// Package deploy_test checks the deployment files in deploy/ without Docker
// or a cluster: the Kubernetes manifests decode strictly into the API types
// and keep the hardening rules, every kustomization builds, the compose
// files load with the compose-spec library, the Dockerfile pins its bases,
// and the alert rules and dashboard use only the metrics the services
// export (promtool checks the PromQL when it is installed: make lint-deploy).
package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The services' configuration contract: every CART_* variable a deployment
// file sets must be one of these, for the service it sets it on.
var (
	commonEnv = []string{
		"CART_ESDB_URL", "CART_SHUTDOWN_TIMEOUT", "CART_HEALTH_INTERVAL",
		"CART_LOG_LEVEL", "CART_LOG_FORMAT", "CART_METRICS_LISTEN", "CART_DRAIN",
		"CART_AUTH_JWKS", "CART_AUTH_ISSUER", "CART_AUTH_AUDIENCE",
		"CART_TLS_CERT", "CART_TLS_KEY", "CART_TLS_CLIENT_CA",
	}
	serviceEnv = map[string][]string{
		"command-svc": {"CART_COMMAND_LISTEN", "CART_SNAPSHOT_EVERY", "CART_CATALOG", "CART_PRICE_SERVICE"},
		"query-svc": {"CART_QUERY_LISTEN", "CART_ADMIN_LISTEN", "CART_MONGO_URI", "CART_MONGO_DB",
			"CART_QUERY_MAX_WAIT", "CART_MAX_LAG"},
	}
	// The gRPC port of each service, and the ports that must stay private.
	grpcPort    = map[string]int32{"command-svc": 50051, "query-svc": 50052}
	adminPort   = int32(50053)
	metricsPort = int32(9090)
)

// exportedMetrics are the Prometheus series the services export (a
// histogram by its _bucket series).
var exportedMetrics = map[string]bool{
	"grpc_server_handled_total":                     true,
	"grpc_server_handling_seconds_bucket":           true,
	"cart_commands_total":                           true,
	"cart_command_conflicts_total":                  true,
	"cart_command_retries_exhausted_total":          true,
	"cart_store_call_duration_seconds_bucket":       true,
	"cart_projection_events_total":                  true,
	"cart_projection_flush_size_bucket":             true,
	"cart_projection_flush_duration_seconds_bucket": true,
	"cart_projection_reconnects_total":              true,
	"cart_projection_checkpoint_commit":             true,
	"cart_projection_parked_events":                 true,
	"cart_projection_lag_events":                    true,
	"cart_projection_lag_seconds":                   true,
	"cart_projection_active":                        true,
}

// allowedEnv reports whether the service may be given the variable.
func allowedEnv(service, name string) bool {
	if !strings.HasPrefix(name, "CART_") {
		return true // GOMEMLIMIT, OTEL_*, POD_NAME, ...
	}
	for _, n := range commonEnv {
		if n == name {
			return true
		}
	}
	for _, n := range serviceEnv[service] {
		if n == name {
			return true
		}
	}
	return false
}

var metricName = regexp.MustCompile(`\b(?:cart|grpc_server)_[a-z0-9_]+\b`)

// unknownMetrics returns the cart_* and grpc_server_* names in a PromQL
// expression that the services do not export.
func unknownMetrics(expr string) []string {
	var bad []string
	for _, m := range metricName.FindAllString(expr, -1) {
		if !exportedMetrics[m] {
			bad = append(bad, m)
		}
	}
	return bad
}

// floatingImage reports whether an image reference floats: no tag and no
// digest, or the tag latest.
func floatingImage(ref string) bool {
	if strings.Contains(ref, "@sha256:") {
		return false
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(last, ":")
	return i < 0 || last[i+1:] == "latest" || last[i+1:] == ""
}

// deployDir is this package's directory, deploy/.
func deployDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func readFile(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustDuration(t *testing.T, what, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

func TestFloatingImage(t *testing.T) {
	for ref, want := range map[string]bool{
		"mongo":                     true,
		"mongo:latest":              true,
		"localhost:5000/cart":       true,
		"localhost:5000/cart:1.2.3": false,
		"docker.kurrent.io/kurrent-latest/kurrentdb:25.1.4":                           false,
		"gcr.io/distroless/static-debian12:nonroot@sha256:" + strings.Repeat("a", 64): false,
	} {
		if got := floatingImage(ref); got != want {
			t.Errorf("floatingImage(%q) = %v, want %v", ref, got, want)
		}
	}
}
