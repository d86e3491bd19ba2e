package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/acme/cart/internal/testing/realstores"
)

// loadCompose loads compose files the way `docker compose` does (schema
// validation, interpolation, merging, !override), with every profile on.
func loadCompose(t *testing.T, files ...string) *types.Project {
	t.Helper()
	dir := deployDir(t)
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(dir, f))
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(dir),
		cli.WithProfiles([]string{"observability"}),
		// Only the files themselves: nothing from this machine's environment.
		cli.WithEnv(nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("compose %v: %v", files, err)
	}
	return p
}

// publicPorts are the only container ports compose may publish beyond the
// host's loopback: the two gRPC APIs.
var publicPorts = map[uint32]bool{50051: true, 50052: true}

// TestCompose loads deploy/docker-compose.yml and checks what it runs.
func TestCompose(t *testing.T) {
	p := loadCompose(t, "docker-compose.yml")
	want := []string{"eventstore", "mongo", "command-svc", "query-svc", "prometheus", "grafana", "jaeger"}
	for _, name := range want {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no service %s", name)
		}
	}
	stages := dockerfileStages(t)
	for name, s := range p.Services {
		what := "service " + name
		if !slices.Contains(want, name) {
			t.Errorf("%s: unexpected", what)
		}
		if floatingImage(s.Image) {
			t.Errorf("%s: image %q has no tag, or :latest", what, s.Image)
		}
		// Admin, metrics and every store or UI: host loopback only.
		for _, port := range s.Ports {
			if port.Published == "" {
				continue
			}
			private := port.Target == uint32(adminPort) || port.Target == uint32(metricsPort) || !publicPorts[port.Target]
			if private && port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on %q, want 127.0.0.1", what, port.Target, port.HostIP)
			}
		}
		// Bind mounts point at files in the repository.
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount: %v", what, err)
				}
			}
		}
		observability := slices.Contains([]string{"prometheus", "grafana", "jaeger"}, name)
		if observability != slices.Contains(s.Profiles, "observability") {
			t.Errorf("%s: profiles %v", what, s.Profiles)
		}
		if _, ok := grpcPort[name]; ok {
			checkComposeService(t, name, s, stages)
		}
	}

	// Images shared with the real-engine tests: the same release lines.
	for name, line := range map[string]string{"eventstore": realstores.EventStoreDBImage, "mongo": realstores.MongoImage} {
		if img := p.Services[name].Image; !strings.HasPrefix(img, line+".") && img != line {
			t.Errorf("service %s: image %s is not of the release line the real-engine tests use (%s)", name, img, line)
		}
	}

	// Prometheus scrapes both services' metrics port.
	var prom struct {
		Global        map[string]any   `json:"global"`
		RuleFiles     []string         `json:"rule_files"`
		ScrapeConfigs []map[string]any `json:"scrape_configs"`
	}
	if err := strictUnmarshal(readFile(t, deployDir(t), "prometheus", "prometheus.yml"), &prom); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	scraped := fmt.Sprint(prom.ScrapeConfigs)
	for svc := range grpcPort {
		if target := fmt.Sprintf("%s:%d", svc, metricsPort); !strings.Contains(scraped, target) {
			t.Errorf("prometheus.yml does not scrape %s", target)
		}
	}
	if !slices.Contains(prom.RuleFiles, "/etc/prometheus/alerts.yml") {
		t.Errorf("prometheus.yml does not load the alert rules")
	}
}

// checkComposeService checks command-svc or query-svc in compose.
func checkComposeService(t *testing.T, name string, s types.ServiceConfig, stages []string) {
	t.Helper()
	what := "service " + name
	if s.Build == nil || s.Build.Target != name || !slices.Contains(stages, name) {
		t.Errorf("%s: must build the Dockerfile's %s target", what, name)
	}
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
		if !allowedEnv(name, k) {
			t.Errorf("%s: %s is not a %s setting", what, k, name)
		}
	}
	listenVar := map[string]string{"command-svc": "CART_COMMAND_LISTEN", "query-svc": "CART_QUERY_LISTEN"}[name]
	if env[listenVar] != fmt.Sprintf("0.0.0.0:%d", grpcPort[name]) || env["CART_METRICS_LISTEN"] != fmt.Sprintf("0.0.0.0:%d", metricsPort) {
		t.Errorf("%s: listen addresses %s=%q CART_METRICS_LISTEN=%q", what, listenVar, env[listenVar], env["CART_METRICS_LISTEN"])
	}
	if name == "query-svc" {
		if env["CART_ADMIN_LISTEN"] != fmt.Sprintf("0.0.0.0:%d", adminPort) {
			t.Errorf("%s: CART_ADMIN_LISTEN=%q", what, env["CART_ADMIN_LISTEN"])
		}
		var published bool
		for _, port := range s.Ports {
			published = published || port.Target == uint32(adminPort)
		}
		if !published {
			t.Errorf("%s: admin port not published on the host's loopback", what)
		}
	}
	if s.HealthCheck == nil || len(s.HealthCheck.Test) < 3 || s.HealthCheck.Test[0] != "CMD" ||
		s.HealthCheck.Test[1] != "/bin/grpc_health_probe" || s.HealthCheck.Test[2] != fmt.Sprintf("-addr=127.0.0.1:%d", grpcPort[name]) {
		t.Errorf("%s: healthcheck must run /bin/grpc_health_probe on the gRPC port, got %v", what, s.HealthCheck)
	}
	drain := mustDuration(t, "CART_DRAIN", env["CART_DRAIN"])
	shutdown := mustDuration(t, "CART_SHUTDOWN_TIMEOUT", env["CART_SHUTDOWN_TIMEOUT"])
	if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < drain+shutdown+5*time.Second {
		t.Errorf("%s: stop_grace_period must exceed drain %s + shutdown %s + 5s", what, drain, shutdown)
	}
	if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("%s: want read_only, cap_drop ALL, no-new-privileges", what)
	}
}

// TestComposeKurrentDB loads the KurrentDB override on top of the base file.
func TestComposeKurrentDB(t *testing.T) {
	p := loadCompose(t, "docker-compose.yml", "docker-compose.kurrentdb.yml")
	s := p.Services["eventstore"]
	if !strings.HasPrefix(s.Image, "docker.kurrent.io/kurrent-latest/kurrentdb:") || floatingImage(s.Image) {
		t.Errorf("image %q", s.Image)
	}
	for k := range s.Environment {
		if !strings.HasPrefix(k, "KURRENTDB_") {
			t.Errorf("env %s: want only KURRENTDB_* settings", k)
		}
	}
	if _, ok := s.Environment["KURRENTDB_CLUSTER_SIZE"]; !ok {
		t.Error("no KURRENTDB_CLUSTER_SIZE")
	}
	var targets []string
	for _, v := range s.Volumes {
		targets = append(targets, v.Target)
	}
	if !slices.Equal(targets, []string{"/var/lib/kurrentdb"}) {
		t.Errorf("volumes at %v, want only /var/lib/kurrentdb", targets)
	}
	// The services still find it under the same name.
	if got := *p.Services["command-svc"].Environment["CART_ESDB_URL"]; !strings.Contains(got, "//eventstore:2113") {
		t.Errorf("command-svc CART_ESDB_URL = %q", got)
	}
}

// TestStoreImagesAgree keeps compose and Kubernetes on the same store
// releases: EventStoreDB in the example install, KurrentDB in its overlay.
func TestStoreImagesAgree(t *testing.T) {
	k8sImage := func(dir string) string {
		for _, o := range build(t, dir) {
			if ss, ok := o.obj.(*appsv1.StatefulSet); ok && ss.Name == "eventstore" {
				return ss.Spec.Template.Spec.Containers[0].Image
			}
		}
		t.Fatalf("%s: no eventstore StatefulSet", dir)
		return ""
	}
	if c, k := loadCompose(t, "docker-compose.yml").Services["eventstore"].Image, k8sImage("overlays/example"); c != k {
		t.Errorf("EventStoreDB: compose %s, k8s %s", c, k)
	}
	if c, k := loadCompose(t, "docker-compose.yml", "docker-compose.kurrentdb.yml").Services["eventstore"].Image, k8sImage("overlays/kurrentdb"); c != k {
		t.Errorf("KurrentDB: compose %s, k8s %s", c, k)
	}
}
