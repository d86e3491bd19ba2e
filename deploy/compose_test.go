package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/acme/cart/internal/catalog/filecatalog"
	"github.com/acme/cart/internal/dev/devauth"
	"github.com/acme/cart/internal/testing/realstores"
)

// loadCompose loads compose files the way `docker compose` does (schema
// validation, interpolation, merging, !override), with every profile on and
// nothing from this machine's environment.
func loadCompose(t *testing.T, files ...string) *types.Project {
	t.Helper()
	return loadComposeEnv(t, nil, files...)
}

// loadComposeEnv is loadCompose with env ("KEY=value") as the shell's
// environment, for ${VAR} interpolation.
func loadComposeEnv(t *testing.T, env []string, files ...string) *types.Project {
	t.Helper()
	dir := deployDir(t)
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(dir, f))
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(dir),
		cli.WithProfiles([]string{"observability"}),
		// Only the files themselves and env: nothing from this machine's
		// environment.
		cli.WithEnv(env),
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
	want := []string{"carttoken", "eventstore", "mongo", "command-svc", "query-svc", "prometheus", "grafana", "jaeger"}
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
			checkComposeStarts(t, p, name, s)
		}
	}
	if ct, ok := p.Services["carttoken"]; ok {
		checkComposeCarttoken(t, ct, stages)
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

// composeEnv is the environment a compose service's container sees: its
// image's ENV (the Dockerfile target it builds), then its environment.
func composeEnv(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	env := map[string]string{}
	if s.Build != nil && s.Build.Target != "" {
		env = imageEnv(t, s.Build.Target)
	}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// mountOf returns the mount of s that holds the container path p (the one
// with the longest target) and p relative to that target.
func mountOf(s types.ServiceConfig, p string) (types.ServiceVolumeConfig, string, bool) {
	var best types.ServiceVolumeConfig
	var rel string
	found := false
	for _, v := range s.Volumes {
		r, err := filepath.Rel(v.Target, p)
		if err != nil || r == ".." || strings.HasPrefix(r, "../") {
			continue
		}
		if !found || len(v.Target) > len(best.Target) {
			best, rel, found = v, r, true
		}
	}
	return best, rel, found
}

// checkComposeStarts parses and validates the configuration compose gives
// command-svc or query-svc with the service's own code, as its main would
// at start, and checks the trust boundary: JWT verification with a JWKS file
// that the carttoken service writes into a volume mounted read-only here,
// with the issuer and audience of the tokens it mints; and, for
// command-svc, a catalog that loads.
func checkComposeStarts(t *testing.T, p *types.Project, name string, s types.ServiceConfig) {
	t.Helper()
	what := "service " + name
	env := composeEnv(t, s)
	cfg, err := parseService(name, s.Command, func(k string) string { return env[k] })
	if err != nil {
		t.Errorf("%s would refuse to start: %v", what, err)
	}
	sec := cfg.Server.Security
	if sec.InsecureNoAuth {
		t.Errorf("%s: CART_INSECURE_NO_AUTH: compose must verify tokens", what)
	}
	switch {
	case sec.AuthJWKS == "":
		t.Errorf("%s: no CART_AUTH_JWKS", what)
	case strings.Contains(sec.AuthJWKS, "://"):
		t.Errorf("%s: CART_AUTH_JWKS %q: want the JWKS file carttoken writes", what, sec.AuthJWKS)
	default:
		checkComposeJWKS(t, p, what, s, sec.AuthJWKS)
	}
	if sec.AuthIssuer != devauth.Issuer || sec.AuthAudience != devauth.Audience {
		t.Errorf("%s: issuer %q, audience %q: the tokens carttoken mints carry %q and %q",
			what, sec.AuthIssuer, sec.AuthAudience, devauth.Issuer, devauth.Audience)
	}
	if name == "command-svc" && cfg.Command.PriceService == "" {
		checkComposeCatalog(t, what, s, cfg.Command.CatalogFile)
	}
}

// checkComposeJWKS checks that jwks, a path in service s, is on a named
// volume mounted read-only, at the same place in it where carttoken writes
// its JWKS, and that s starts only after carttoken succeeded.
func checkComposeJWKS(t *testing.T, p *types.Project, what string, s types.ServiceConfig, jwks string) {
	t.Helper()
	m, rel, ok := mountOf(s, jwks)
	if !ok || m.Type != types.VolumeTypeVolume || !m.ReadOnly {
		t.Errorf("%s: JWKS %s must lie on a named volume mounted read-only, got %+v", what, jwks, m)
		return
	}
	ct, ok := p.Services["carttoken"]
	if !ok {
		t.Errorf("%s: no carttoken service writes the JWKS", what)
		return
	}
	dataDir := composeEnv(t, ct)["CART_DATA_DIR"]
	written := path.Join(dataDir, "auth", devauth.JWKSFileName) // as cmd/dev/carttoken lays it out
	cm, crel, ok := mountOf(ct, written)
	if dataDir == "" || !ok || cm.Type != types.VolumeTypeVolume || cm.ReadOnly || cm.Source != m.Source || crel != rel {
		t.Errorf("%s: reads %s (volume %s, %s); carttoken writes %s (volume %s, %s, read-only %v)",
			what, jwks, m.Source, rel, written, cm.Source, crel, cm.ReadOnly)
	}
	if dep, ok := s.DependsOn["carttoken"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("%s: must depend on carttoken with condition %s (the JWKS must exist at start)", what, types.ServiceConditionCompletedSuccessfully)
	}
}

// checkComposeCatalog checks that the catalog file is on a read-only bind
// mount of a file in the repository that the file catalog accepts.
func checkComposeCatalog(t *testing.T, what string, s types.ServiceConfig, file string) {
	t.Helper()
	m, rel, ok := mountOf(s, file)
	if file == "" || !ok || m.Type != types.VolumeTypeBind || !m.ReadOnly {
		t.Errorf("%s: catalog %q must lie on a read-only bind mount", what, file)
		return
	}
	b, err := os.ReadFile(filepath.Join(m.Source, rel))
	if err != nil {
		t.Errorf("%s: catalog: %v", what, err)
		return
	}
	prices, err := filecatalog.Parse(b)
	if err != nil || len(prices) == 0 {
		t.Errorf("%s: catalog %s: %d prices, %v", what, filepath.Join(m.Source, rel), len(prices), err)
	}
}

// checkComposeCarttoken checks the one-shot service that makes the dev key
// and JWKS: the Dockerfile's carttoken target, hardened like the services,
// no network, and a command that makes the key (a -sub, so it mints).
func checkComposeCarttoken(t *testing.T, s types.ServiceConfig, stages []string) {
	t.Helper()
	if s.Build == nil || s.Build.Target != "carttoken" || !slices.Contains(stages, "carttoken") {
		t.Error("carttoken: must build the Dockerfile's carttoken target")
	}
	if !slices.Contains(s.Command, "-sub") {
		t.Errorf("carttoken: command %v mints nothing, so makes no key", s.Command)
	}
	if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") || s.NetworkMode != "none" {
		t.Error("carttoken: want read_only, cap_drop ALL, no-new-privileges, network_mode none")
	}
	if len(s.Profiles) > 0 || len(s.Ports) > 0 {
		t.Errorf("carttoken: profiles %v, ports %v: it must run with the services and publish nothing", s.Profiles, s.Ports)
	}
	if r := s.Restart; r != "" && r != "no" {
		t.Errorf("carttoken: restart %q on a one-shot", r)
	}
}

// TestComposeTracingOptIn: traces are exported only when asked for, and
// then to the observability profile's Jaeger over OTLP/HTTP.
func TestComposeTracingOptIn(t *testing.T) {
	off := loadCompose(t, "docker-compose.yml")
	on := loadComposeEnv(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318"}, "docker-compose.yml")
	for svc := range grpcPort {
		if v := off.Services[svc].Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]; v != nil && *v != "" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q by default; tracing must be opt-in", svc, *v)
		}
		v := on.Services[svc].Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
		if v == nil || *v != "http://jaeger:4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT from the shell is not passed on", svc)
		}
		if p := on.Services[svc].Environment["OTEL_EXPORTER_OTLP_PROTOCOL"]; p == nil || *p != "http/protobuf" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf (port 4318)", svc)
		}
	}
	if j, ok := on.Services["jaeger"]; !ok || !slices.Contains(j.Profiles, "observability") {
		t.Error("no jaeger service in the observability profile")
	}
}
