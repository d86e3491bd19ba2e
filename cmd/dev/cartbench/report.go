package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/acme/cart/internal/testing/loadgen"
)

// Report is everything one run measured, in the shape --json prints, so
// that runs can be compared by tools as well as by eye.
type Report struct {
	Machine   Machine    `json:"machine"`
	Stack     StackInfo  `json:"stack"`
	Settings  Settings   `json:"settings"`
	Scenarios []Scenario `json:"scenarios"`
	// Targets are issue 10's goals: each figure beside the floor measured
	// in the same run, their ratio and whether it meets the bound.
	Targets []Target `json:"targets"`
	// VisibilityFloor is what the min_version target is compared with.
	VisibilityFloor *visibilityFloor `json:"visibility_floor,omitempty"`
	// Scaling is the projector's write cost and replay rate by read model
	// size; Replay the rebuild of a large log.
	Scaling []ScaleRow `json:"scaling,omitempty"`
	Replay  *Replay    `json:"replay,omitempty"`
	Notes   []string   `json:"notes"`
}

// Machine says where the numbers were taken; they mean little without it.
type Machine struct {
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	NumCPU    int    `json:"num_cpu"`
	CPU       string `json:"cpu,omitempty"`
	GoVersion string `json:"go_version"`
	// GOMAXPROCS is how many CPUs the Go runtime used.
	GOMAXPROCS int `json:"gomaxprocs"`
	// Commit is the source's git commit, with "-dirty" for uncommitted
	// changes; empty when unknown.
	Commit string `json:"commit,omitempty"`
	// LoadAvgStart and LoadAvgEnd are the 1, 5 and 15 minute load
	// averages before and after the run (Linux): other processes on the
	// same CPUs move every number, and this says how much there were.
	LoadAvgStart string `json:"load_avg_start,omitempty"`
	LoadAvgEnd   string `json:"load_avg_end,omitempty"`
}

// StackInfo says what was measured: the stores bound the numbers more than
// the services do.
type StackInfo struct {
	InProcess   bool   `json:"in_process"`
	CommandAddr string `json:"command_addr"`
	QueryAddr   string `json:"query_addr"`
	EventStore  string `json:"event_store"`
	ReadModel   string `json:"read_model"`
	Snapshots   string `json:"snapshots,omitempty"`
	DataDir     string `json:"data_dir,omitempty"`
}

// Settings are the knobs of the run.
type Settings struct {
	Duration      string   `json:"duration"`
	Concurrency   int      `json:"concurrency"`
	History       int      `json:"history"`
	MaxOps        int      `json:"max_ops"`
	VisibilityOps int      `json:"visibility_ops"`
	Phases        []string `json:"phases"`
	Callers       int      `json:"callers"`
	Scale         []int    `json:"scale"`
	ReplayEvents  int      `json:"replay_events"`
}

// Scenario is one row: what ran and what it measured. Latencies are of the
// successful operations only; failures are counted by class in Errors.
type Scenario struct {
	Name           string         `json:"name"`
	Description    string         `json:"description"`
	Workers        int            `json:"workers"`
	Ops            int            `json:"ops"`
	ElapsedSeconds float64        `json:"elapsed_seconds"`
	OpsPerSecond   float64        `json:"ops_per_second"`
	P50Ms          float64        `json:"p50_ms"`
	P90Ms          float64        `json:"p90_ms"`
	P99Ms          float64        `json:"p99_ms"`
	MaxMs          float64        `json:"max_ms"`
	MeanMs         float64        `json:"mean_ms"`
	Errors         map[string]int `json:"errors"`
	// UnexpectedErrors counts the errors that are not in the scenario's
	// nature (everything but Aborted on the hot cart).
	UnexpectedErrors int `json:"unexpected_errors"`
	// CatchUpMs is how long after the scenario's last reply the read model
	// reflected all its writes; 0 for read-only scenarios.
	CatchUpMs float64 `json:"catch_up_ms,omitempty"`
	// ConflictRetries counts command-svc's reloads after a concurrency
	// conflict during the scenario (in-process stack only).
	ConflictRetries *int64 `json:"conflict_retries,omitempty"`
	// ProjectorFlushes counts the projector's batch writes during the
	// scenario and its catch-up (in-process stack only).
	ProjectorFlushes        *int64  `json:"projector_flushes,omitempty"`
	ProjectorEventsPerFlush float64 `json:"projector_events_per_flush,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newScenario(name, description string, workers int, res loadgen.Result, expected map[string]bool) Scenario {
	sum := res.Summary()
	s := Scenario{
		Name: name, Description: description, Workers: workers,
		Ops: res.Ops, ElapsedSeconds: res.Elapsed.Seconds(), OpsPerSecond: res.Rate(),
		P50Ms: ms(sum.P50), P90Ms: ms(sum.P90), P99Ms: ms(sum.P99), MaxMs: ms(sum.Max), MeanMs: ms(sum.Mean),
		Errors: res.Errors,
	}
	for class, n := range res.Errors {
		if !expected[class] {
			s.UnexpectedErrors += n
		}
	}
	return s
}

func machine() Machine {
	return Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(), CPU: cpuModel(), GoVersion: runtime.Version(), LoadAvgStart: loadAvg(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Commit: commit()}
}

// commit is the git commit the benchmark was built from: from git in the
// working directory when there is one (go run stamps no VCS data), else from
// the build's VCS stamp; empty when neither knows.
func commit() string {
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		c := strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			c += "-dirty"
		}
		return c
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if rev != "" {
			return rev[:min(12, len(rev))] + dirty
		}
	}
	return ""
}

// loadAvg is the 1, 5 and 15 minute load averages where the OS tells them
// cheaply (Linux); empty elsewhere.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// cpuModel is the processor's name where the OS tells it cheaply (Linux);
// empty elsewhere.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func writeJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// fmtMs renders a latency with three significant figures or so, in the
// unit that keeps it readable.
func fmtMs(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 1000:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fs", v/1000)
	}
}

func fmtErrors(errs map[string]int) string {
	if len(errs) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(errs))
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, errs[k]))
	}
	return strings.Join(parts, " ")
}

// writeTable prints the report for people: header, one row per scenario,
// what each scenario did, and the notes.
func writeTable(w io.Writer, r Report) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "cartbench: the cart product through its gRPC API, on loopback\n")
	cpu := ""
	if m.CPU != "" {
		cpu = ", " + m.CPU
	}
	fmt.Fprintf(&b, "machine   %s/%s, %d CPUs%s, GOMAXPROCS %d, %s\n", m.GOOS, m.GOARCH, m.NumCPU, cpu, m.GOMAXPROCS, m.GoVersion)
	if m.Commit != "" {
		fmt.Fprintf(&b, "commit    %s\n", m.Commit)
	}
	if m.LoadAvgStart != "" {
		fmt.Fprintf(&b, "load      %s at start, %s at end (1/5/15 min averages; the stack and the benchmark share these CPUs with whatever else runs)\n", m.LoadAvgStart, m.LoadAvgEnd)
	}
	switch {
	case r.Stack.CommandAddr == "" && !r.Stack.InProcess:
	case r.Stack.InProcess:
		fmt.Fprintf(&b, "stack     in-process: %s; %s; snapshots: %s\n", r.Stack.EventStore, r.Stack.ReadModel, r.Stack.Snapshots)
	default:
		fmt.Fprintf(&b, "stack     running at command %s, query %s (stores unknown)\n", r.Stack.CommandAddr, r.Stack.QueryAddr)
	}
	s := r.Settings
	fmt.Fprintf(&b, "settings  %s per scenario, %d workers, history %d events, at most %d ops per scenario, %d per visibility scenario\n",
		s.Duration, s.Concurrency, s.History, s.MaxOps, s.VisibilityOps)
	if len(s.Phases) > 0 {
		fmt.Fprintf(&b, "phases    %s; %d callers for the ratios; scale %v carts; replay %d events\n", strings.Join(s.Phases, ","), s.Callers, s.Scale, s.ReplayEvents)
	}
	b.WriteString("\n")

	header := []string{"scenario", "workers", "ops", "ops/s", "p50", "p90", "p99", "max", "catch-up", "errors"}
	rows := [][]string{header}
	for _, sc := range r.Scenarios {
		rows = append(rows, []string{
			sc.Name, fmt.Sprint(sc.Workers), fmt.Sprint(sc.Ops), fmt.Sprintf("%.1f", sc.OpsPerSecond),
			fmtMs(sc.P50Ms), fmtMs(sc.P90Ms), fmtMs(sc.P99Ms), fmtMs(sc.MaxMs), fmtMs(sc.CatchUpMs), fmtErrors(sc.Errors),
		})
	}
	widths := make([]int, len(header))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, row := range rows {
		for i, c := range row {
			switch {
			case i == 0:
				fmt.Fprintf(&b, "%-*s", widths[i], c)
			case i == len(row)-1:
				fmt.Fprintf(&b, "  %s", c)
			default:
				fmt.Fprintf(&b, "  %*s", widths[i], c)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\nscenarios\n")
	for _, sc := range r.Scenarios {
		fmt.Fprintf(&b, "  %-*s  %s\n", widths[0], sc.Name, sc.Description)
	}
	if len(r.Scaling) > 0 {
		b.WriteString("\nread side scaling (FerretDB/SQLite with the _id expression index; rates over the window before each size)\n")
		fmt.Fprintf(&b, "  %10s  %8s  %14s  %16s  %14s  %14s  %16s  %16s\n", "carts", "window", "replay carts/s", "projector ms/doc", "raw single/s", "raw ms/write", "raw upserts/s", "raw inserts/s")
		for _, row := range r.Scaling {
			fmt.Fprintf(&b, "  %10d  %8d  %14.1f  %16.2f  %14.1f  %14.2f  %16.1f  %16.1f\n", row.Carts, row.WindowCarts, row.ReplayCartsPerSecond, row.ProjectorMsPerDoc,
				row.RawWritesPerSecond, row.RawMsPerWrite, row.RawBulkDocsPerSecond, row.RawInsertDocsPerSecond)
		}
		if len(r.Scaling) > 0 && r.Scaling[0].RawBulkSize > 0 {
			fmt.Fprintf(&b, "  (raw: the MongoDB driver alone on the same server, one writer: single upserts by _id, unordered bulk upserts and inserts of %d)\n", r.Scaling[0].RawBulkSize)
		}
	}
	if rp := r.Replay; rp != nil {
		fmt.Fprintf(&b, "\nrebuild replay  %d events on %d carts (filled in %.1fs): caught up in %.1fs, %.0f events/s (%.0f/s after the first %d); query-svc peak RSS %.1f MiB after %d events, %.1f MiB at the end\n",
			rp.Events, rp.Carts, rp.FillSeconds, rp.Seconds, rp.EventsPerSec, rp.LateEventsSec, rp.EarlyEvents, rp.EarlyHWMMiB, rp.EarlyEvents, rp.EndHWMMiB)
	}
	if f := r.VisibilityFloor; f != nil {
		fmt.Fprintf(&b, "\nvisibility floor  %d probes during visibility-min-version: subscription delivery p50 %s p99 %s, document write p50 %s p99 %s\n",
			f.Samples, fmtMs(f.DeliveryP50), fmtMs(f.DeliveryP99), fmtMs(f.WriteP50), fmtMs(f.WriteP99))
	}
	if len(r.Targets) > 0 {
		b.WriteString("\ntargets (figure vs floor measured in this run, ratio, target, verdict)\n")
		for _, t := range r.Targets {
			fmt.Fprintf(&b, "  %s\n", targetLine(t))
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nnotes\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
