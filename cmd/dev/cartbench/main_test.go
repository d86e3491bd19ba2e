package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
		"--duration", "200ms", "--concurrency", "2", "--history", "50", "--visibility-ops", "10", "--max-ops", "200",
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
	for _, want := range []string{"machine   ", "stack     in-process", "FerretDB", "~250 upserts/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
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
				if c.external() || c.Duration != 5*time.Second || c.Concurrency != 8 || c.History != 10000 || c.JSON || c.LogLevel != slog.LevelError {
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
			args: []string{"--command-addr", "127.0.0.1:50051", "--query-addr", "localhost:50052"},
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
			args:    []string{"--command-addr", "10.0.0.1:50051", "--query-addr", "example.com:50052"},
			wantErr: []string{"-command-addr: \"10.0.0.1:50051\" is not a loopback", "-query-addr: \"example.com:50052\" is not a loopback"},
		},
		{
			name:    "both addresses or none",
			args:    []string{"--command-addr", "127.0.0.1:50051"},
			wantErr: []string{"go together"},
		},
		{
			name:    "in-process knobs with a running stack",
			args:    []string{"--command-addr", "[::1]:1", "--query-addr", "[::1]:2", "--snapshot-every", "5"},
			wantErr: []string{"apply only to the in-process stack"},
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
		Machine:  Machine{GOOS: "linux", GOARCH: "amd64", NumCPU: 2, CPU: "Test CPU", GoVersion: "go1.26", LoadAvgStart: "0.50 0.40 0.30", LoadAvgEnd: "1.50 0.60 0.35"},
		Stack:    StackInfo{InProcess: true, EventStore: "EventStoreDB stand-in, in memory", ReadModel: "FerretDB", Snapshots: "command-svc default"},
		Settings: Settings{Duration: "5s", Concurrency: 8, History: 10000, MaxOps: 200000, VisibilityOps: 500},
		Scenarios: []Scenario{
			{Name: rowMany, Description: "many", Workers: 8, Ops: 1000, OpsPerSecond: 200, P50Ms: 1.234, P90Ms: 12.34, P99Ms: 123.4, MaxMs: 1234, CatchUpMs: 250, Errors: map[string]int{}},
			{Name: rowHot, Description: "hot", Workers: 8, Ops: 10, OpsPerSecond: 2, P50Ms: 5, Errors: map[string]int{"Unavailable": 1, "Aborted": 3}, UnexpectedErrors: 1, ConflictRetries: &retries, ProjectorFlushes: &flushes},
		},
		Notes: []string{"a note"},
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
		"linux/amd64, 2 CPUs, Test CPU, go1.26",
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
