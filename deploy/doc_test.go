// Package deploy_test checks the deployment files in deploy/ without Docker
// or a cluster: the Kubernetes manifests decode strictly into the API types
// and keep the hardening rules, every kustomization builds, the compose
// files load with the compose-spec library, the Dockerfile pins its bases,
// the services would start with the configuration compose and the
// Kubernetes overlays give them (parsed and validated by their own code),
// and the alert rules and dashboard use only the metrics the services
// register (promtool checks the PromQL when it is installed: make lint-deploy).
package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The ports the deployment files use: the gRPC port of each service, and
// the ports that must stay private.
var (
	grpcPort    = map[string]int32{"command-svc": 50051, "query-svc": 50052}
	adminPort   = int32(50053)
	metricsPort = int32(9090)
)

// allowedEnv reports whether the service may be given the variable: any
// non-CART_* one, and the CART_* ones its flags read (serviceEnvNames, taken
// from the service's own flag definitions, so that a renamed or removed flag
// fails every file that still sets the old name).
func allowedEnv(service, name string) bool {
	if !strings.HasPrefix(name, "CART_") {
		return true // GOMEMLIMIT, OTEL_*, POD_NAME, ...
	}
	return serviceEnvNames()[service][name]
}

var metricName = regexp.MustCompile(`\b(?:cart|grpc_server)_[a-z0-9_]+\b`)

// unknownMetrics returns the cart_* and grpc_server_* names in a PromQL
// expression that the services do not export (exportedSeries: what
// internal/metrics registers).
func unknownMetrics(t *testing.T, expr string) []string {
	t.Helper()
	exported, err := exportedSeries()
	if err != nil {
		t.Fatalf("the services' metrics: %v", err)
	}
	var bad []string
	for _, m := range metricName.FindAllString(expr, -1) {
		if !exported[m] {
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
