// Package stack runs the whole product in one process on embedded stores:
// the EventStoreDB stand-in, an embedded FerretDB, command-svc and
// query-svc. It is the one-command local stack (cmd/dev/cartstack), and the
// end-to-end tests and benchmarks start it on free ports.
package stack

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/acme/cart/internal/api/guard"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/commandsvc"
	"github.com/acme/cart/internal/dev/devauth"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/querysvc"
	"github.com/acme/cart/internal/readmodel"
)

// Config says where each part listens and where data lives. Listen
// addresses with port 0 pick free ports (tests).
type Config struct {
	CommandListen string
	QueryListen   string
	// AdminListen is the admin API's address; empty keeps it off.
	AdminListen string
	ESDBListen  string
	MongoListen string
	// CommandMetricsListen and QueryMetricsListen are the services'
	// /metrics listeners; empty keeps one off. Pprof serves pprof on them.
	CommandMetricsListen, QueryMetricsListen string
	Pprof                                    bool
	// DataDir holds the stores' data (esdb/ and ferretdb/ below it).
	DataDir string
	// ESDBInMemory keeps events in memory only (faster; lost at exit).
	ESDBInMemory bool
	// MongoDB is the read model's database name.
	MongoDB string
	// SnapshotEvery is passed to command-svc (0: its default).
	SnapshotEvery int
	// RateLimit bounds commands per principal (zero: command-svc's flag
	// defaults; PerSecond < 0: off, for benchmarks).
	RateLimit guard.RateLimit
	Log       *slog.Logger
}

// Defaults the local stack listens on; see the README.
const (
	DefaultCommandListen = "127.0.0.1:50051"
	DefaultQueryListen   = "127.0.0.1:50052"
	DefaultAdminListen   = "127.0.0.1:50053"
	DefaultESDBListen    = "127.0.0.1:2113"
	DefaultMongoListen   = "127.0.0.1:27017"
	// The metrics ports compose publishes on the host's loopback too.
	DefaultCommandMetricsListen = "127.0.0.1:9091"
	DefaultQueryMetricsListen   = "127.0.0.1:9092"
	DefaultDataDir              = ".data"
)

// Stack is the running product.
type Stack struct {
	// Addresses the parts serve on.
	CommandAddr, QueryAddr, AdminAddr string
	// CommandMetricsAddr and QueryMetricsAddr are the services' HTTP
	// listeners serving /metrics (empty: off).
	CommandMetricsAddr, QueryMetricsAddr string
	// ESDBURL and MongoURI are the stores' connection strings.
	ESDBURL, MongoURI string
	// Tokens mints bearer tokens the services accept (the dev key under
	// DataDir/auth); CatalogFile is the price list command-svc reads,
	// reloaded when edited.
	Tokens      *devauth.Minter
	CatalogFile string

	esdb         *standin.Server
	mongo        *embeddedmongo.Server
	stopServices context.CancelFunc
	stopStores   context.CancelFunc
	services     sync.WaitGroup
	stores       sync.WaitGroup
	failed       chan struct{}
	failOnce     sync.Once
	mu           sync.Mutex
	errs         []error
}

// Start brings the stores up, then both services, and returns once every
// listener is bound. Services report SERVING on gRPC health once their
// stores answer; callers that need that wait for it.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stack{failed: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	esdbCfg := standin.Config{Listen: cfg.ESDBListen, Logger: log.With("component", "esdb-standin")}
	if !cfg.ESDBInMemory {
		esdbCfg.DataDir = filepath.Join(cfg.DataDir, "esdb")
	}
	if s.esdb, err = standin.New(esdbCfg); err != nil {
		return nil, fmt.Errorf("stack: EventStoreDB stand-in: %w", err)
	}
	s.ESDBURL = s.esdb.ConnectionString()

	storeCtx, stopStores := context.WithCancel(context.WithoutCancel(ctx))
	s.stopStores = stopStores
	s.spawn(&s.stores, "esdb-standin", func() error { return s.esdb.Serve(storeCtx) })

	if s.mongo, err = embeddedmongo.Start(ctx, embeddedmongo.Config{
		Listen:        cfg.MongoListen,
		DataDir:       filepath.Join(cfg.DataDir, "ferretdb"),
		IndexInterval: time.Second,
	}); err != nil {
		return nil, fmt.Errorf("stack: FerretDB: %w", err)
	}
	s.MongoURI = s.mongo.URI()

	if s.Tokens, err = devauth.Ensure(filepath.Join(cfg.DataDir, "auth")); err != nil {
		return nil, fmt.Errorf("stack: dev signing key: %w", err)
	}
	if s.CatalogFile, err = ensureCatalog(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("stack: catalog: %w", err)
	}
	vc := s.Tokens.VerifierConfig()
	security := rpc.SecurityConfig{AuthJWKS: vc.JWKS, AuthIssuer: vc.Issuer, AuthAudience: vc.Audience, Reflection: true}
	rate := cfg.RateLimit
	switch {
	case rate.PerSecond < 0:
		rate = guard.RateLimit{}
	case rate.PerSecond == 0:
		rate = guard.RateLimit{PerSecond: commandsvc.DefaultRatePerSecond, Burst: commandsvc.DefaultRateBurst}
	}

	// FerretDB's limits, and the index that keeps its writes flat with the
	// number of carts, created as soon as a collection is first written.
	rmOpts := readmodel.FerretDBCompat()
	rmOpts.CollectionWritten = s.mongo.EnsureIndexes

	cmdLis, err := net.Listen("tcp", cfg.CommandListen)
	if err != nil {
		return nil, fmt.Errorf("stack: command-svc: %w", err)
	}
	s.CommandAddr = cmdLis.Addr().String()
	qryLis, err := net.Listen("tcp", cfg.QueryListen)
	if err != nil {
		cmdLis.Close()
		return nil, fmt.Errorf("stack: query-svc: %w", err)
	}
	s.QueryAddr = qryLis.Addr().String()
	var adminLis net.Listener
	if cfg.AdminListen != "" {
		if adminLis, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			cmdLis.Close()
			qryLis.Close()
			return nil, fmt.Errorf("stack: admin: %w", err)
		}
		s.AdminAddr = adminLis.Addr().String()
	}
	cmdMetrics, qryMetrics, err := s.listenMetrics(cfg)
	if err != nil {
		for _, l := range []net.Listener{cmdLis, qryLis, adminLis} {
			if l != nil {
				l.Close()
			}
		}
		return nil, err
	}

	runCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	s.stopServices = stopServices
	s.spawn(&s.services, "command-svc", func() error {
		return commandsvc.Run(runCtx, commandsvc.Config{
			ServerConfig:  rpc.ServerConfig{Listener: cmdLis, Security: security, MetricsListener: cmdMetrics, Pprof: cfg.Pprof && cmdMetrics != nil},
			ESDBURL:       s.ESDBURL,
			CatalogFile:   s.CatalogFile,
			RateLimit:     rate,
			SnapshotEvery: cfg.SnapshotEvery,
		}, log.With("service", "command-svc"))
	})
	s.spawn(&s.services, "query-svc", func() error {
		return querysvc.Run(runCtx, querysvc.Config{
			ServerConfig:  rpc.ServerConfig{Listener: qryLis, Security: security, MetricsListener: qryMetrics, Pprof: cfg.Pprof && qryMetrics != nil},
			ReadModel:     &rmOpts,
			AdminListener: adminLis,
			ESDBURL:       s.ESDBURL,
			MongoURI:      s.MongoURI,
			MongoDB:       cfg.MongoDB,
		}, log.With("service", "query-svc"))
	})
	return s, nil
}

// spawn runs a part; a part that stops on its own is a failure of the
// whole stack, reported by Failed.
func (s *Stack) spawn(wg *sync.WaitGroup, name string, run func() error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := run()
		if err != nil && !errors.Is(err, context.Canceled) {
			s.addErr(fmt.Errorf("%s: %w", name, err))
		}
		s.failOnce.Do(func() { close(s.failed) })
	}()
}

func (s *Stack) addErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

// Failed is closed when any part stops, so that the program exits rather
// than running half a product.
func (s *Stack) Failed() <-chan struct{} { return s.failed }

// Close stops the services (gracefully, so the projector flushes its
// checkpoint), then the stores, and returns what went wrong on the way.
func (s *Stack) Close() error {
	wait := func(wg *sync.WaitGroup, what string) {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			s.addErr(fmt.Errorf("stack: %s did not stop within 30s", what))
		}
	}
	if s.stopServices != nil {
		s.stopServices()
	}
	wait(&s.services, "the services")
	if s.mongo != nil {
		if err := s.mongo.Close(); err != nil {
			s.addErr(fmt.Errorf("FerretDB: %w", err))
		}
	}
	if s.stopStores != nil {
		s.stopStores()
	}
	if s.esdb != nil {
		if err := s.esdb.Close(); err != nil {
			s.addErr(fmt.Errorf("esdb-standin: %w", err))
		}
	}
	wait(&s.stores, "the EventStoreDB stand-in")
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

//go:embed sample-catalog.json
var sampleCatalog []byte

// ensureCatalog writes the sample price list into dataDir on the first
// start and keeps it afterwards, so that a developer can edit prices while
// the stack runs (command-svc reloads the file) and see PRICE_CHANGED.
func ensureCatalog(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "catalog.json")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, sampleCatalog, 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// listenMetrics binds the services' metrics listeners that cfg turns on.
func (s *Stack) listenMetrics(cfg Config) (cmd, qry net.Listener, err error) {
	if cfg.CommandMetricsListen != "" {
		if cmd, err = net.Listen("tcp", cfg.CommandMetricsListen); err != nil {
			return nil, nil, fmt.Errorf("stack: command-svc metrics: %w", err)
		}
		s.CommandMetricsAddr = cmd.Addr().String()
	}
	if cfg.QueryMetricsListen != "" {
		if qry, err = net.Listen("tcp", cfg.QueryMetricsListen); err != nil {
			if cmd != nil {
				cmd.Close()
			}
			return nil, nil, fmt.Errorf("stack: query-svc metrics: %w", err)
		}
		s.QueryMetricsAddr = qry.Addr().String()
	}
	return cmd, qry, nil
}
