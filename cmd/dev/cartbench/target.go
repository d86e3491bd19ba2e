package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/acme/cart/internal/api/guard"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/dev/stack"
)

// target is the stack under test: its addresses, what it runs on, and how
// to let it go.
type target struct {
	commandAddr, queryAddr string
	// token authenticates the benchmark as a backend service (cart:any).
	token string
	// esdbURL, mongoURI and mongoDB are the in-process stack's stores;
	// empty for a running stack.
	esdbURL, mongoURI, mongoDB string
	info                       StackInfo
	// logs counts what the in-process stack logged; nil for a running
	// stack, whose logs we cannot see.
	logs  *logCounter
	close func() error
}

// startTarget starts the stack in-process on free loopback ports, or
// checks that the running one answers.
func startTarget(ctx context.Context, cfg config, stderr io.Writer) (*target, error) {
	if cfg.external() {
		t := &target{
			commandAddr: cfg.CommandAddr, queryAddr: cfg.QueryAddr, token: cfg.Token,
			info:  StackInfo{InProcess: false, CommandAddr: cfg.CommandAddr, QueryAddr: cfg.QueryAddr, EventStore: "unknown (running stack)", ReadModel: "unknown (running stack)"},
			close: func() error { return nil },
		}
		return t, nil
	}

	dir, removeDir := cfg.DataDir, func() error { return nil }
	if dir == "" {
		tmp, err := os.MkdirTemp("", "cartbench-")
		if err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		dir, removeDir = tmp, func() error { return os.RemoveAll(tmp) }
	}
	logs := &logCounter{}
	s, err := stack.Start(ctx, stack.Config{
		CommandListen: "127.0.0.1:0",
		QueryListen:   "127.0.0.1:0",
		ESDBListen:    "127.0.0.1:0",
		MongoListen:   "127.0.0.1:0",
		DataDir:       dir,
		ESDBInMemory:  cfg.ESDBInMemory,
		MongoDB:       "cartbench",
		SnapshotEvery: cfg.SnapshotEvery,
		// A benchmark is one principal sending for every user: no limit.
		RateLimit: guard.RateLimit{PerSecond: -1},
		Log:       slog.New(&countingHandler{c: logs, out: slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel})}),
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start the stack: %w", err), removeDir())
	}
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.WaitReady(readyCtx); err != nil {
		return nil, errors.Join(err, s.Close(), removeDir())
	}
	token, err := s.Tokens.Mint("cartbench", []string{auth.ScopeAny}, 24*time.Hour)
	if err != nil {
		return nil, errors.Join(err, s.Close(), removeDir())
	}
	es := "EventStoreDB stand-in, on disk (fsync, group commit)"
	if cfg.ESDBInMemory {
		es = "EventStoreDB stand-in, in memory"
	}
	snap := "command-svc default"
	switch {
	case cfg.SnapshotEvery < 0:
		snap = "off"
	case cfg.SnapshotEvery > 0:
		snap = fmt.Sprintf("every %d events", cfg.SnapshotEvery)
	}
	return &target{
		commandAddr: s.CommandAddr,
		queryAddr:   s.QueryAddr,
		token:       token,
		esdbURL:     s.ESDBURL,
		mongoURI:    s.MongoURI,
		mongoDB:     "cartbench",
		info: StackInfo{
			InProcess:   true,
			CommandAddr: s.CommandAddr, QueryAddr: s.QueryAddr,
			EventStore: es,
			ReadModel:  "FerretDB v1.24.2 embedded, SQLite backend",
			Snapshots:  snap,
			DataDir:    dir,
		},
		logs: logs,
		close: func() error {
			return errors.Join(s.Close(), removeDir())
		},
	}, nil
}

// Messages of the in-process stack's debug logs that the benchmark counts.
// Logs are the only window, from outside, on how hard a hot cart makes
// command-svc work and on how the projector batches; if a message changes,
// its count reads 0 and the report says so.
const (
	conflictRetryMsg   = "concurrency conflict; deciding again" // internal/command
	projectionFlushMsg = "projection flushed"                   // internal/projection
)

// logCounter counts log records of the in-process stack.
type logCounter struct {
	conflictRetries atomic.Int64
	flushes         atomic.Int64
	flushedEvents   atomic.Int64
	warnings        atomic.Int64
	errors          atomic.Int64
}

// countingHandler counts records and passes those at the configured level
// on to out. It enables debug only below the loggers of the components
// whose debug lines it counts, so that the per-call debug lines of every
// other part are not even built.
type countingHandler struct {
	c     *logCounter
	out   slog.Handler
	debug bool
}

func (h *countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.debug || l >= slog.LevelWarn || h.out.Enabled(ctx, l)
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	switch {
	case r.Message == conflictRetryMsg:
		h.c.conflictRetries.Add(1)
	case r.Message == projectionFlushMsg:
		h.c.flushes.Add(1)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "events" && a.Value.Kind() == slog.KindInt64 {
				h.c.flushedEvents.Add(a.Value.Int64())
				return false
			}
			return true
		})
	case r.Level >= slog.LevelError:
		h.c.errors.Add(1)
	case r.Level >= slog.LevelWarn:
		h.c.warnings.Add(1)
	}
	if h.out.Enabled(ctx, r.Level) {
		return h.out.Handle(ctx, r)
	}
	return nil
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	debug := h.debug
	for _, a := range as {
		if a.Key == "component" && (a.Value.String() == "command" || a.Value.String() == "projection") {
			debug = true
		}
	}
	return &countingHandler{c: h.c, out: h.out.WithAttrs(as), debug: debug}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{c: h.c, out: h.out.WithGroup(name), debug: h.debug}
}
