package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
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
long a command takes to become visible in GetCart.

By default it starts the whole stack in this process on free loopback ports
with a temporary data directory; --command-addr and --query-addr target a
running one instead (e.g. make run). Only loopback addresses are accepted.

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
	fs.BoolVar(&c.ESDBInMemory, "esdb-in-memory", inMem, "in-process stack: keep events in memory instead of an fsynced log on disk (env CARTBENCH_ESDB_IN_MEMORY)")
	fs.IntVar(&c.SnapshotEvery, "snapshot-every", snap, "in-process stack: command-svc snapshot interval, 0 for its default, -1 for none (env CARTBENCH_SNAPSHOT_EVERY)")
	fs.StringVar(&c.DataDir, "data-dir", envString("CARTBENCH_DATA_DIR", ""), "in-process stack: where the stores keep data; empty for a temporary directory removed at exit (env CARTBENCH_DATA_DIR)")
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
