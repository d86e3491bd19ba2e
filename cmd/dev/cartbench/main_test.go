package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var allRows = []string{rowMany, rowHot, rowSeed, rowFresh, rowHistory, rowGetCart, rowPoll, rowMinVer}

// TestRunSmoke runs the whole program against an in-process stack with
// tiny settings: it must finish, print a row with operations for every
// scenario, and see no unexpected error (run fails on any).
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{
		"--phases", "api", "--duration", "200ms", "--concurrency", "2", "--history", "50", "--visibility-ops", "10", "--max-ops", "200",
	}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	rows := tableRows(t, out.String())
	for _, name := range allRows {
		f, ok := rows[name]
		if !ok {
			t.Errorf("no row %q in:\n%s", name, out.String())
			continue
		}
		// name workers ops ops/s p50 p90 p99 max catch-up errors…
		ops, err := strconv.Atoi(f[2])
		if err != nil || ops == 0 {
			t.Errorf("row %q: ops %q, want a positive count", name, f[2])
		}
		if errs := strings.Join(f[9:], " "); errs != "-" && (name != rowHot || strings.Contains(strings.ReplaceAll(errs, "Aborted=", ""), "=")) {
			t.Errorf("row %q: errors %q, want none (Aborted only on the hot cart)", name, errs)
		}
	}
	if f, ok := rows[rowSeed]; ok && f[2] != "50" {
		t.Errorf("seed-history ops = %s, want the 50 events of --history", f[2])
	}
	for _, want := range []string{"machine   ", "stack     in-process", "FerretDB", "~250 upserts/s", "visibility floor  ", "  " + targetMinVer + " "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRunTargetsJSON runs the ratios and read-side phases at tiny sizes
// with --json: every target must be measured, with positive figures and
// floors, a ratio that is their quotient and a verdict that follows from
// it; the scaling table must have a row per size and the replay its
// figures.
func TestRunTargetsJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts command-svc, FerretDB and a query-svc subprocess")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{
		"--json", "--phases", "ratios,readside", "--duration", "200ms", "--callers", "2", "--max-ops", "300",
		"--scale", "20,60", "--replay-events", "450",
	}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if rep.Machine.GoVersion == "" || rep.Machine.GOMAXPROCS < 1 || rep.Machine.NumCPU < 1 {
		t.Errorf("machine = %+v, want go version, GOMAXPROCS and CPUs", rep.Machine)
	}
	want := []string{targetFresh, targetP50, targetDurable, targetHotRate, targetHotAbort, targetScale, targetApply, targetMemory}
	got := map[string]Target{}
	for _, tg := range rep.Targets {
		got[tg.Name] = tg
	}
	for _, name := range want {
		tg, ok := got[name]
		if !ok {
			t.Errorf("no target %q in %+v", name, rep.Targets)
			continue
		}
		if !tg.Measured || tg.Floor <= 0 || tg.Figure < 0 || (name != targetHotAbort && tg.Figure <= 0) {
			t.Errorf("target %s = %+v, want measured with positive figure and floor", name, tg)
			continue
		}
		if r := tg.Figure / tg.Floor; math.Abs(r-tg.Ratio) > 1e-9*max(1, r) {
			t.Errorf("target %s: ratio %v, want figure/floor = %v", name, tg.Ratio, r)
		}
		pass := tg.Ratio >= tg.Bound
		if tg.Op == "<=" {
			pass = tg.Ratio <= tg.Bound
		} else if tg.Op != ">=" {
			t.Errorf("target %s: op %q", name, tg.Op)
		}
		if tg.Pass != pass {
			t.Errorf("target %s: pass %v, but ratio %v %s %v", name, tg.Pass, tg.Ratio, tg.Op, tg.Bound)
		}
	}
	for _, name := range []string{rowFloorN, rowFreshN, rowFloor1, rowFresh1, rowHot1, rowHotN, rowDurFloorN, rowDurFreshN} {
		s, ok := find(rep, name)
		if !ok || s.Ops == 0 || s.OpsPerSecond <= 0 || s.P50Ms <= 0 {
			t.Errorf("row %s = %+v (found %v), want operations with a rate and a p50", name, s, ok)
		}
	}
	if len(rep.Scaling) != 2 {
		t.Fatalf("scaling = %+v, want the 2 sizes of --scale", rep.Scaling)
	}
	for i, row := range rep.Scaling {
		if row.Carts != []int{20, 60}[i] || row.WindowCarts <= 0 || row.ReplayCartsPerSecond <= 0 || row.ProjectorMsPerDoc <= 0 ||
			row.RawWritesPerSecond <= 0 || row.RawMsPerWrite <= 0 || row.RawBulkDocsPerSecond <= 0 || row.RawInsertDocsPerSecond <= 0 {
			t.Errorf("scaling row %d = %+v, want positive figures", i, row)
		}
	}
	if r := rep.Replay; r == nil || r.Events != 450 || r.Carts != 5 || r.EventsPerSec <= 0 || r.EarlyHWMMiB <= 0 || r.EndHWMMiB < r.EarlyHWMMiB {
		t.Errorf("replay = %+v, want 450 events on 5 carts, a rate and peak RSS that never falls", rep.Replay)
	}
}

func TestNewTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		figure, floor float64
		op            string
		bound         float64
		pass, meas    bool
	}{
		{"at least, met", 30, 100, ">=", 0.2, true, true},
		{"at least, missed", 10, 100, ">=", 0.2, false, true},
		{"at most, met", 3, 1, "<=", 4, true, true},
		{"at most, missed", 5, 1, "<=", 4, false, true},
		{"zero count at most zero", 0, 500, "<=", 0, true, true},
		{"no floor is not measured", 5, 0, ">=", 0.1, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget("x", "ops/s", "fig", tt.figure, "floor", tt.floor, tt.op, tt.bound)
			if tg.Pass != tt.pass || tg.Measured != tt.meas {
				t.Errorf("newTarget(%v, %v, %s %v) = pass %v measured %v, want %v %v", tt.figure, tt.floor, tt.op, tt.bound, tg.Pass, tg.Measured, tt.pass, tt.meas)
			}
			wantVerdict := map[bool]string{true: "PASS", false: "MISS"}[tt.pass]
			if !tt.meas {
				wantVerdict = "NOT MEASURED"
			}
			if v := tg.Verdict(); v != wantVerdict {
				t.Errorf("verdict %q, want %q", v, wantVerdict)
			}
			if line := targetLine(tg); !strings.Contains(line, wantVerdict) {
				t.Errorf("line %q lacks %q", line, wantVerdict)
			}
		})
	}
}

func TestScaleWindow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ n, want int }{{20, 10}, {1000, 500}, {10000, 1000}, {100000, 10000}} {
		if got := scaleWindow(tt.n); got != tt.want {
			t.Errorf("scaleWindow(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// tableRows returns the fields of the table's rows by scenario name.
func tableRows(t *testing.T, out string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) >= 10 && !strings.HasPrefix(line, " ") {
			rows[f[0]] = f
		}
	}
	return rows
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(t *testing.T, c config)
		wantErr []string
	}{
		{
			name: "defaults start the stack in-process",
			check: func(t *testing.T, c config) {
				if c.external() || c.Duration != 5*time.Second || c.Concurrency != 8 || c.History != 10000 || c.JSON || c.LogLevel != slog.LevelError ||
					len(c.Phases) != 3 || c.Callers != 16 || !slices.Equal(c.Scale, []int{1000, 10000, 100000}) || c.ReplayEvents != 1000000 {
					t.Errorf("defaults: %+v", c)
				}
			},
		},
		{
			name: "environment fallbacks",
			env:  map[string]string{"CARTBENCH_DURATION": "2s", "CARTBENCH_CONCURRENCY": "3", "CARTBENCH_HISTORY": "7", "CARTBENCH_ESDB_IN_MEMORY": "true"},
			check: func(t *testing.T, c config) {
				if c.Duration != 2*time.Second || c.Concurrency != 3 || c.History != 7 || !c.ESDBInMemory {
					t.Errorf("from env: %+v", c)
				}
			},
		},
		{
			name: "flags win over the environment",
			env:  map[string]string{"CARTBENCH_CONCURRENCY": "3"},
			args: []string{"--concurrency", "4", "--json"},
			check: func(t *testing.T, c config) {
				if c.Concurrency != 4 || !c.JSON {
					t.Errorf("flags: %+v", c)
				}
			},
		},
		{
			name: "a running stack on loopback",
			args: []string{"--phases", "api", "--command-addr", "127.0.0.1:50051", "--query-addr", "localhost:50052"},
			check: func(t *testing.T, c config) {
				if !c.external() || c.CommandAddr != "127.0.0.1:50051" || c.QueryAddr != "localhost:50052" {
					t.Errorf("external: %+v", c)
				}
			},
		},
		{
			name:    "every problem at once",
			env:     map[string]string{"CARTBENCH_HISTORY": "many"},
			args:    []string{"--duration", "0s", "--concurrency", "0", "--visibility-ops", "0", "--log-level", "loud"},
			wantErr: []string{"CARTBENCH_HISTORY", "-duration", "-concurrency", "-visibility-ops", "-log-level"},
		},
		{
			name:    "only loopback targets",
			args:    []string{"--phases", "api", "--command-addr", "10.0.0.1:50051", "--query-addr", "example.com:50052"},
			wantErr: []string{"-command-addr: \"10.0.0.1:50051\" is not a loopback", "-query-addr: \"example.com:50052\" is not a loopback"},
		},
		{
			name:    "both addresses or none",
			args:    []string{"--phases", "api", "--command-addr", "127.0.0.1:50051"},
			wantErr: []string{"go together"},
		},
		{
			name:    "in-process knobs with a running stack",
			args:    []string{"--phases", "api", "--command-addr", "[::1]:1", "--query-addr", "[::1]:2", "--snapshot-every", "5"},
			wantErr: []string{"apply only to the in-process stack"},
		},
		{
			name: "phases and sizes",
			args: []string{"--phases", "ratios, readside", "--scale", "20,60", "--replay-events", "450", "--callers", "2"},
			check: func(t *testing.T, c config) {
				if c.Phases["api"] || !c.Phases["ratios"] || !c.Phases["readside"] || !slices.Equal(c.Scale, []int{20, 60}) || c.ReplayEvents != 450 || c.Callers != 2 {
					t.Errorf("phases and sizes: %+v", c)
				}
			},
		},
		{
			name:    "bad phases and sizes",
			args:    []string{"--phases", "api,bogus", "--scale", "100,50", "--replay-events", "0", "--callers", "0"},
			wantErr: []string{"-phases: unknown phase \"bogus\"", "-scale: 100,50: sizes must be ascending", "-replay-events", "-callers"},
		},
		{
			name:    "a running stack runs only the api phase",
			args:    []string{"--command-addr", "127.0.0.1:1", "--query-addr", "127.0.0.1:2"},
			wantErr: []string{"with a running stack use -phases api"},
		},
		{
			name:    "stray arguments",
			args:    []string{"extra"},
			wantErr: []string{"unexpected arguments"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// t.Setenv rules out t.Parallel here.
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := parseConfig(tt.args, io.Discard)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("parseConfig(%q) = %+v, want an error", tt.args, c)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig(%q): %v", tt.args, err)
			}
			tt.check(t, c)
		})
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:50051", true},
		{"127.1.2.3:1", true},
		{"[::1]:50051", true},
		{"localhost:50051", true},
		{"0.0.0.0:50051", false},
		{"192.168.1.10:50051", false},
		{"db.internal:50051", false},
		{"127.0.0.1", false},
		{"127.0.0.1:", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			if err := checkLoopback(tt.addr); (err == nil) != tt.ok {
				t.Errorf("checkLoopback(%q) = %v, want ok=%v", tt.addr, err, tt.ok)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"gRPC status", status.Error(codes.Unavailable, "x"), "Unavailable"},
		{"wrapped status", fmt.Errorf("op: %w", status.Error(codes.Aborted, "x")), "Aborted"},
		{"maintenance call", &maintenanceError{call: "ClearCart", err: status.Error(codes.Aborted, "x")}, "ClearCart/Aborted"},
		{"stale read", &staleError{user: "u"}, "StaleRead"},
		{"plain error", errors.New("boom"), "Unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := classify(tt.err); got != tt.want {
				t.Errorf("classify(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestCountingHandler(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	c := &logCounter{}
	root := slog.New(&countingHandler{c: c, out: slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelError})})
	cmdLog := root.With("service", "command-svc").With("component", "command")
	projLog := root.With("component", "projection")
	other := root.With("component", "grpc")

	cmdLog.Debug(conflictRetryMsg, "attempt", 1)
	cmdLog.Debug(conflictRetryMsg, "attempt", 2)
	projLog.Debug(projectionFlushMsg, "events", 7, "carts", 2)
	projLog.Debug(projectionFlushMsg, "events", 3, "carts", 1)
	other.Debug(conflictRetryMsg) // debug is off below other components
	other.Warn("slow")
	other.Error("broken")

	if got := c.conflictRetries.Load(); got != 2 {
		t.Errorf("conflict retries = %d, want 2", got)
	}
	if f, e := c.flushes.Load(), c.flushedEvents.Load(); f != 2 || e != 10 {
		t.Errorf("flushes = %d with %d events, want 2 with 10", f, e)
	}
	if w, e := c.warnings.Load(), c.errors.Load(); w != 1 || e != 1 {
		t.Errorf("warnings %d, errors %d; want 1 and 1", w, e)
	}
	if s := out.String(); !strings.Contains(s, "broken") || strings.Contains(s, "slow") || strings.Contains(s, conflictRetryMsg) {
		t.Errorf("forwarded at error level:\n%s", s)
	}
}

func sampleReport() Report {
	retries, flushes := int64(42), int64(5)
	return Report{
		Machine:  Machine{GOOS: "linux", GOARCH: "amd64", NumCPU: 2, CPU: "Test CPU", GoVersion: "go1.26", GOMAXPROCS: 2, Commit: "abc123", LoadAvgStart: "0.50 0.40 0.30", LoadAvgEnd: "1.50 0.60 0.35"},
		Stack:    StackInfo{InProcess: true, EventStore: "EventStoreDB stand-in, in memory", ReadModel: "FerretDB", Snapshots: "command-svc default"},
		Settings: Settings{Duration: "5s", Concurrency: 8, History: 10000, MaxOps: 200000, VisibilityOps: 500},
		Scenarios: []Scenario{
			{Name: rowMany, Description: "many", Workers: 8, Ops: 1000, OpsPerSecond: 200, P50Ms: 1.234, P90Ms: 12.34, P99Ms: 123.4, MaxMs: 1234, CatchUpMs: 250, Errors: map[string]int{}},
			{Name: rowHot, Description: "hot", Workers: 8, Ops: 10, OpsPerSecond: 2, P50Ms: 5, Errors: map[string]int{"Unavailable": 1, "Aborted": 3}, UnexpectedErrors: 1, ConflictRetries: &retries, ProjectorFlushes: &flushes},
		},
		Targets: []Target{
			newTarget(targetFresh, "ops/s", "fresh", 500, "floor", 10000, ">=", 0.2),
			unmeasured(targetMinVer, "no probe"),
		},
		Scaling: []ScaleRow{{Carts: 1000, WindowCarts: 500, ReplayCartsPerSecond: 321.5, ProjectorMsPerDoc: 3.11, RawWritesPerSecond: 400, RawMsPerWrite: 2.5, RawBulkDocsPerSecond: 900, RawInsertDocsPerSecond: 1200, RawBulkSize: 50}},
		Replay:  &Replay{Events: 1000000, Carts: 10000, Seconds: 200, EventsPerSec: 5000, EarlyEvents: 10000, EarlyHWMMiB: 30, EndHWMMiB: 31.5},
		Notes:   []string{"a note"},
	}
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := writeTable(&out, sampleReport()); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"linux/amd64, 2 CPUs, Test CPU, GOMAXPROCS 2, go1.26",
		"commit    abc123",
		"  " + targetFresh + " ", "ratio 0.050  target >= 0.20  MISS",
		"  " + targetMinVer + " ", "NOT MEASURED: no probe",
		"1000       500           321.5              3.11",
		"1000000 events on 10000 carts", "30.0 MiB after 10000 events, 31.5 MiB at the end",
		"0.50 0.40 0.30 at start, 1.50 0.60 0.35 at end",
		"in-process: EventStoreDB stand-in, in memory; FerretDB; snapshots: command-svc default",
		"5s per scenario, 8 workers, history 10000 events",
		"1.23ms", "12.3ms", "123.4ms", "1.23s", "250.0ms",
		"Aborted=3 Unavailable=1",
		"  - a note",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
	rows := tableRows(t, s)
	if f := rows[rowMany]; len(f) != 10 || f[9] != "-" {
		t.Errorf("row %s = %q, want 10 fields ending in -", rowMany, f)
	}
	if f := rows[rowHot]; len(f) != 11 || f[8] != "-" {
		t.Errorf("row %s = %q, want no catch-up and two error classes", rowHot, f)
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := writeJSON(&out, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if len(got.Scenarios) != 2 || got.Scenarios[1].Errors["Aborted"] != 3 || got.Scenarios[1].UnexpectedErrors != 1 ||
		got.Scenarios[1].ConflictRetries == nil || *got.Scenarios[1].ConflictRetries != 42 || got.Scenarios[0].ConflictRetries != nil {
		t.Errorf("round trip: %+v", got.Scenarios)
	}
	if len(got.Targets) != 2 || got.Targets[0].Pass || !got.Targets[0].Measured || got.Targets[0].Ratio != 0.05 || got.Targets[1].Measured ||
		len(got.Scaling) != 1 || got.Scaling[0].RawInsertDocsPerSecond != 1200 || got.Replay == nil || got.Replay.EndHWMMiB != 31.5 || got.Machine.Commit != "abc123" {
		t.Errorf("round trip: targets %+v, scaling %+v, replay %+v", got.Targets, got.Scaling, got.Replay)
	}
	for _, key := range []string{`"targets"`, `"figure"`, `"floor"`, `"ratio"`, `"bound"`, `"pass"`, `"gomaxprocs"`, `"go_version"`, `"commit"`, `"scaling"`, `"replay"`} {
		if !strings.Contains(out.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	if !strings.Contains(out.String(), `"p99_ms": 123.4`) {
		t.Errorf("JSON lacks p99_ms:\n%s", out.String())
	}
}

func TestFmtMs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   float64
		want string
	}{
		{0, "-"}, {0.0421, "0.04ms"}, {9.999, "10.00ms"}, {10, "10.0ms"}, {999.9, "999.9ms"}, {1500, "1.50s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := fmtMs(tt.in); got != tt.want {
				t.Errorf("fmtMs(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
