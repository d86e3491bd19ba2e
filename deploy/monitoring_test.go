package deploy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ruleFile is the shape of a Prometheus rule file (only what is used here).
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

// TestAlertRules checks deploy/prometheus/alerts.yml against the metrics
// contract: the alerts the runbook names exist, use only exported series,
// and carry a severity and a summary.
func TestAlertRules(t *testing.T) {
	var rf ruleFile
	if err := strictUnmarshal(readFile(t, deployDir(t), "prometheus", "alerts.yml"), &rf); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	alerts := map[string]string{} // name -> expr
	fors := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert], fors[r.Alert] = r.Expr, r.For
			if bad := unknownMetrics(t, r.Expr); len(bad) > 0 {
				t.Errorf("%s: series the services do not export: %v", r.Alert, bad)
			}
			if !slices.Contains([]string{"page", "ticket"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want page or ticket", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary and description annotations are required", r.Alert)
			}
		}
	}
	for name, need := range map[string][]string{
		"CartProjectionLagHigh":       {"cart_projection_lag_seconds", "> 30"},
		"CartProjectionParkedEvents":  {"cart_projection_parked_events", "> 0"},
		"CartProjectorStopped":        {"max(cart_projection_active) == 0", "absent(cart_projection_active)"},
		"CartGRPCErrorRateHigh":       {"grpc_server_handled_total", "Internal|Unknown|Unavailable"},
		"CartCommandRetriesExhausted": {"cart_command_retries_exhausted_total"},
	} {
		expr, ok := alerts[name]
		if !ok {
			t.Errorf("no alert %s", name)
			continue
		}
		for _, s := range need {
			if !strings.Contains(expr, s) {
				t.Errorf("%s: expr does not contain %q", name, s)
			}
		}
	}
	if fors["CartProjectionLagHigh"] != "5m" {
		t.Errorf("CartProjectionLagHigh: for %q, want 5m", fors["CartProjectionLagHigh"])
	}
}

// dashboard is the part of a Grafana dashboard JSON that is checked.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readFile(t, deployDir(t), "grafana", "dashboards", "cart.json"), &d); err != nil {
		t.Fatalf("cart.json: %v", err)
	}
	return d
}

// TestDashboard checks the Grafana dashboard: every panel queries the
// templated Prometheus datasource with exported series only, and the
// panels the brief asks for are there.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard without uid or title")
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		dsVar = dsVar || (v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus")
	}
	if !dsVar {
		t.Error("no datasource template variable of type prometheus")
	}
	ids := map[int]bool{}
	var all strings.Builder
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: must query ${datasource}", p.Title)
		}
		for _, tg := range p.Targets {
			if bad := unknownMetrics(t, tg.Expr); len(bad) > 0 {
				t.Errorf("panel %q: series the services do not export: %v", p.Title, bad)
			}
			all.WriteString(tg.Expr + "\n")
		}
	}
	for _, m := range []string{
		"cart_commands_total", "grpc_server_handled_total", "grpc_server_handling_seconds_bucket",
		"cart_command_conflicts_total", "cart_command_retries_exhausted_total",
		"cart_projection_lag_events", "cart_projection_lag_seconds", "cart_projection_parked_events",
		"cart_projection_reconnects_total", "cart_projection_active",
	} {
		if !strings.Contains(all.String(), m) {
			t.Errorf("no panel shows %s", m)
		}
	}
	if !strings.Contains(all.String(), "histogram_quantile(0.5,") || !strings.Contains(all.String(), "histogram_quantile(0.99,") {
		t.Error("no p50/p99 latency")
	}
}

// promtool returns the promtool to check PromQL with: $PROMTOOL (make
// lint-deploy sets it), else ../bin/promtool; it skips when there is none.
func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PROMTOOL")
	if p == "" {
		p = filepath.Join(deployDir(t), "..", "bin", "promtool")
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no promtool (%v): run make lint-deploy, which installs the pinned one", err)
	}
	return p
}

// TestDashboardPromQL has promtool parse every dashboard query, written as
// recording rules with Grafana's $__rate_interval replaced.
func TestDashboardPromQL(t *testing.T) {
	bin := promtool(t)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			expr := strings.ReplaceAll(tg.Expr, "$__rate_interval", "5m")
			js, _ := json.Marshal(expr) // a JSON string is a YAML string
			b.WriteString("      - record: cart:dashboard:query\n        expr: " + string(js) + "\n")
		}
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules (dashboard queries): %v\n%s", err, out)
	}
}

// TestPrometheusRules runs promtool on the rule file and its unit tests,
// and checks the compose profile's Prometheus config.
func TestPrometheusRules(t *testing.T) {
	bin := promtool(t)
	dir := filepath.Join(deployDir(t), "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "--syntax-only", "prometheus.yml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestGrafanaProvisioning checks that compose's Grafana loads the dashboard
// from where compose mounts it and has the datasource it defaults to.
func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Type      string `json:"type"`
			Access    string `json:"access"`
			URL       string `json:"url"`
			IsDefault bool   `json:"isDefault"`
			Editable  bool   `json:"editable"`
		} `json:"datasources"`
	}
	if err := strictUnmarshal(readFile(t, deployDir(t), "grafana", "provisioning", "datasources", "prometheus.yml"), &ds); err != nil {
		t.Fatalf("datasources: %v", err)
	}
	var prom bool
	for _, d := range ds.Datasources {
		prom = prom || (d.UID == "prometheus" && d.Type == "prometheus" && d.URL == "http://prometheus:9090" && d.IsDefault)
	}
	if !prom {
		t.Error("no default Prometheus datasource with uid prometheus at http://prometheus:9090")
	}
	var dp struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name            string `json:"name"`
			Folder          string `json:"folder"`
			Type            string `json:"type"`
			DisableDeletion bool   `json:"disableDeletion"`
			AllowUIUpdates  bool   `json:"allowUiUpdates"`
			Options         struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := strictUnmarshal(readFile(t, deployDir(t), "grafana", "provisioning", "dashboards", "cart.yml"), &dp); err != nil {
		t.Fatalf("dashboard providers: %v", err)
	}
	p := loadCompose(t, "docker-compose.yml")
	mounts := map[string]string{} // target -> source
	for _, v := range p.Services["grafana"].Volumes {
		mounts[v.Target] = v.Source
	}
	for _, pr := range dp.Providers {
		src, ok := mounts[pr.Options.Path]
		if !ok || src != filepath.Join(deployDir(t), "grafana", "dashboards") {
			t.Errorf("provider %s reads %s, which compose does not mount from grafana/dashboards", pr.Name, pr.Options.Path)
		}
	}
	if len(dp.Providers) == 0 {
		t.Error("no dashboard provider")
	}
}
