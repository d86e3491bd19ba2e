package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is everything the benchmark can be told; flags win over the
// environment, which wins over the defaults.
type config struct {
	// CommandAddr and QueryAddr target a running stack; both empty starts
	// one in-process.
	CommandAddr, QueryAddr string
	// Token is the bearer token sent to a running stack (a cart:any
	// service token, e.g. from `make token SUB=cartbench SCOPE=cart:any`);
	// the in-process stack mints its own.
	Token         string
	Duration      time.Duration
	Concurrency   int
	History       int
	MaxOps        int
	VisibilityOps int
	WaitTimeout   time.Duration
	JSON          bool
	// CPUProfile, if set, is where the run's CPU profile is written.
	CPUProfile string

	// Phases selects what runs: "api" (the scenarios through the whole
	// stack), "ratios" (command-svc against the no-op floor), "readside"
	// (the projector's scaling table and the rebuild replay).
	Phases map[string]bool
	// Callers is how many concurrent callers the ratio figures use.
	Callers int
	// Scale lists the read model sizes, in carts, of the scaling table.
	Scale []int
	// ReplayEvents is the size of the log the rebuild replays.
	ReplayEvents int
	// QuerySvcBin is a query-svc binary for the replay; empty builds one.
	QuerySvcBin string

	// In-process stack only.
	ESDBInMemory  bool
	SnapshotEvery int
	DataDir       string
	LogLevel      slog.Level
}

func envString(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// envParsed returns the environment's value parsed, or def; a value that
// does not parse is reported with the other configuration problems.
func envParsed[T any](name string, def T, parse func(string) (T, error), problems *[]error) T {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	x, err := parse(v)
	if err != nil {
		*problems = append(*problems, fmt.Errorf("%s=%q: %w", name, v, err))
		return def
	}
	return x
}

// parseConfig reads flags and environment and validates the result,
// reporting every problem at once.
func parseConfig(args []string, stderr io.Writer) (config, error) {
	var envErrs []error
	fs := flag.NewFlagSet("cartbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `cartbench measures the cart product through its gRPC API: AddItem on many
users, on one hot user and on a user with a long history, GetCart, and how
long a command takes to become visible in GetCart (phase api); command-svc
beside the no-op gRPC floor of the same server (phase ratios); the
projector's replay rate and write cost by read model size and a rebuild's
rate and memory (phase readside). Each target is printed beside its floor,
with the ratio and PASS or MISS.

By default it starts the whole stack in this process on free loopback ports
with a temporary data directory; --command-addr and --query-addr target a
running one instead (e.g. make run; --phases api only). Only loopback
addresses are accepted.

Usage: cartbench [flags]

`)
		fs.PrintDefaults()
	}
	var c config
	dur := envParsed("CARTBENCH_DURATION", 5*time.Second, time.ParseDuration, &envErrs)
	conc := envParsed("CARTBENCH_CONCURRENCY", 8, strconv.Atoi, &envErrs)
	hist := envParsed("CARTBENCH_HISTORY", 10000, strconv.Atoi, &envErrs)
	maxOps := envParsed("CARTBENCH_MAX_OPS", 200000, strconv.Atoi, &envErrs)
	visOps := envParsed("CARTBENCH_VISIBILITY_OPS", 500, strconv.Atoi, &envErrs)
	wait := envParsed("CARTBENCH_WAIT_TIMEOUT", 15*time.Minute, time.ParseDuration, &envErrs)
	inMem := envParsed("CARTBENCH_ESDB_IN_MEMORY", false, strconv.ParseBool, &envErrs)
	snap := envParsed("CARTBENCH_SNAPSHOT_EVERY", 0, strconv.Atoi, &envErrs)

	fs.StringVar(&c.CommandAddr, "command-addr", envString("CARTBENCH_COMMAND_ADDR", ""), "command-svc of a running stack, e.g. 127.0.0.1:50051; empty starts one in-process (env CARTBENCH_COMMAND_ADDR)")
	fs.StringVar(&c.Token, "token", envString("CARTBENCH_TOKEN", ""), "bearer token for a running stack, with scope cart:any (env CARTBENCH_TOKEN)")
	fs.StringVar(&c.QueryAddr, "query-addr", envString("CARTBENCH_QUERY_ADDR", ""), "query-svc of a running stack, e.g. 127.0.0.1:50052 (env CARTBENCH_QUERY_ADDR)")
	fs.DurationVar(&c.Duration, "duration", dur, "how long each scenario runs (env CARTBENCH_DURATION)")
	fs.IntVar(&c.Concurrency, "concurrency", conc, "concurrent workers per scenario (env CARTBENCH_CONCURRENCY)")
	fs.IntVar(&c.History, "history", hist, "past events of the long-history user, seeded first (env CARTBENCH_HISTORY)")
	fs.IntVar(&c.MaxOps, "max-ops", maxOps, "at most this many operations per scenario (env CARTBENCH_MAX_OPS)")
	fs.IntVar(&c.VisibilityOps, "visibility-ops", visOps, "at most this many measurements per visibility scenario (env CARTBENCH_VISIBILITY_OPS)")
	fs.DurationVar(&c.WaitTimeout, "wait-timeout", wait, "bound of the history seeding and of waiting for the read model to catch up (env CARTBENCH_WAIT_TIMEOUT)")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run (benchmark, in-process services and stores) to this file")
	fs.BoolVar(&c.ESDBInMemory, "esdb-in-memory", inMem, "in-process stack: keep events in memory instead of an fsynced log on disk (env CARTBENCH_ESDB_IN_MEMORY)")
	fs.IntVar(&c.SnapshotEvery, "snapshot-every", snap, "in-process stack: command-svc snapshot interval, 0 for its default, -1 for none (env CARTBENCH_SNAPSHOT_EVERY)")
	fs.StringVar(&c.DataDir, "data-dir", envString("CARTBENCH_DATA_DIR", ""), "in-process stack: where the stores keep data; empty for a temporary directory removed at exit (env CARTBENCH_DATA_DIR)")
	phases := fs.String("phases", envString("CARTBENCH_PHASES", "api,ratios,readside"), "what to run, comma-separated: api (scenarios through the whole stack), ratios (command-svc beside the no-op gRPC floor), readside (projector scaling and the rebuild replay) (env CARTBENCH_PHASES)")
	fs.IntVar(&c.Callers, "callers", envParsed("CARTBENCH_CALLERS", 16, strconv.Atoi, &envErrs), "concurrent callers of the ratio figures (env CARTBENCH_CALLERS)")
	scale := fs.String("scale", envString("CARTBENCH_SCALE", "1000,10000,100000"), "read model sizes in carts of the scaling table, ascending, comma-separated (env CARTBENCH_SCALE)")
	fs.IntVar(&c.ReplayEvents, "replay-events", envParsed("CARTBENCH_REPLAY_EVENTS", 1000000, strconv.Atoi, &envErrs), "events in the log the rebuild replay catches up on (env CARTBENCH_REPLAY_EVENTS)")
	fs.StringVar(&c.QuerySvcBin, "query-svc-bin", envString("CARTBENCH_QUERY_SVC_BIN", ""), "query-svc binary the replay runs; empty builds cmd/query-svc with go build (env CARTBENCH_QUERY_SVC_BIN)")
	level := fs.String("log-level", envString("CARTBENCH_LOG_LEVEL", "error"), "in-process stack: its logs at this level and above go to stderr (env CARTBENCH_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	problems := envErrs
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	if err := c.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		problems = append(problems, fmt.Errorf("-log-level: %w", err))
	}
	var err error
	if c.Phases, err = parsePhases(*phases); err != nil {
		problems = append(problems, fmt.Errorf("-phases: %w", err))
	}
	if c.Scale, err = parseScale(*scale); err != nil {
		problems = append(problems, fmt.Errorf("-scale: %w", err))
	}
	if err := c.validate(); err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		return config{}, fmt.Errorf("configuration:\n%w", err)
	}
	return c, nil
}

// external reports whether the benchmark targets a running stack.
func (c config) external() bool { return c.CommandAddr != "" || c.QueryAddr != "" }

func (c config) validate() error {
	var p []error
	if c.Duration <= 0 {
		p = append(p, errors.New("-duration must be positive"))
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		p = append(p, errors.New("-concurrency must be between 1 and 1024"))
	}
	if c.History < 1 {
		p = append(p, errors.New("-history must be at least 1"))
	}
	if c.MaxOps < 1 {
		p = append(p, errors.New("-max-ops must be at least 1"))
	}
	if c.VisibilityOps < 1 {
		p = append(p, errors.New("-visibility-ops must be at least 1"))
	}
	if c.WaitTimeout <= 0 {
		p = append(p, errors.New("-wait-timeout must be positive"))
	}
	if c.Callers < 1 || c.Callers > 1024 {
		p = append(p, errors.New("-callers must be between 1 and 1024"))
	}
	if c.ReplayEvents < 1 {
		p = append(p, errors.New("-replay-events must be at least 1"))
	}
	if c.external() && (c.Phases["ratios"] || c.Phases["readside"]) {
		p = append(p, errors.New("-phases ratios and readside start their own servers: with a running stack use -phases api"))
	}
	if c.SnapshotEvery < -1 {
		p = append(p, errors.New("-snapshot-every must be -1 or more"))
	}
	if c.external() {
		if c.CommandAddr == "" || c.QueryAddr == "" {
			p = append(p, errors.New("-command-addr and -query-addr go together"))
		}
		for _, a := range []struct{ flag, addr string }{{"-command-addr", c.CommandAddr}, {"-query-addr", c.QueryAddr}} {
			if a.addr != "" {
				if err := checkLoopback(a.addr); err != nil {
					p = append(p, fmt.Errorf("%s: %w", a.flag, err))
				}
			}
		}
		if c.ESDBInMemory || c.SnapshotEvery != 0 || c.DataDir != "" {
			p = append(p, errors.New("-esdb-in-memory, -snapshot-every and -data-dir apply only to the in-process stack"))
		}
	}
	return errors.Join(p...)
}

// checkLoopback refuses anything but a loopback host: the benchmark sends
// thousands of writes per second and must never be pointed at a shared or
// production service by a stray environment variable.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("%q has no port", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.0/8, ::1 or localhost)", addr)
	}
	return nil
}

// phaseNames are the parts of a run, in the order they run.
var phaseNames = []string{"api", "ratios", "readside"}

func parsePhases(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(phaseNames, f) {
			return nil, fmt.Errorf("unknown phase %q (want some of %v)", f, phaseNames)
		}
		out[f] = true
	}
	if len(out) == 0 {
		return nil, errors.New("no phase")
	}
	return out, nil
}

// parseScale reads the scaling table's sizes: positive and ascending, since
// one replay passes each size on the way to the largest.
func parseScale(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		if n < 10 {
			return nil, fmt.Errorf("%d: each size must be at least 10 carts", n)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("%v: sizes must be ascending", s)
		}
		out = append(out, n)
	}
	return out, nil
}
