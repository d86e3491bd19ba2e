package embeddedmongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DefaultListen is the address the stand-alone program listens on when none is given: MongoDB's
// own default port on loopback, so that tools configured for a local MongoDB work unchanged.
const DefaultListen = "127.0.0.1:27017"

// defaultStartTimeout bounds the readiness ping when the caller's context has no deadline, so that
// a wedged server fails Start instead of hanging a test binary.
const defaultStartTimeout = 20 * time.Second

// Config says where the embedded server listens and stores its data. The zero value is not
// usable: DataDir is required because FerretDB's SQLite backend keeps one file per database there.
type Config struct {
	// Listen is the TCP address to listen on. Empty means DefaultListen. A port of 0 picks a free
	// port, which URI reports; tests should use "127.0.0.1:0".
	Listen string

	// DataDir is the directory holding the SQLite files. It is created if missing.
	DataDir string

	// Logger receives FerretDB's logs. FerretDB logs every connection at Info level, so nil means
	// a text logger on stderr at Warn level.
	Logger *slog.Logger

	// IndexInterval, if positive, makes the server run EnsureAllIndexes that often, so that every
	// collection, including those created later by a program in another process, gets the index
	// that keeps writes by _id flat with the collection's size (see EnsureIndexes). It runs once
	// at start too. Zero leaves it to the caller (EnsureIndexes, or readmodel's
	// Options.CollectionWritten hook).
	IndexInterval time.Duration
}

// Server is a running embedded FerretDB. It exists so that tests and the local stack can talk the
// MongoDB wire protocol without a MongoDB installation.
type Server struct {
	uri string
	dir string // the data directory, holding <database>.sqlite
	log *slog.Logger
	// admin is the client that proved readiness; it is kept for housekeeping such as dropping
	// per-test databases, and disconnected before shutdown so that Close does not wait for it.
	admin     *mongo.Client
	cancel    context.CancelFunc
	done      chan struct{}
	loopDone  chan struct{} // nil unless the index loop runs
	closeOnce sync.Once
}

// newMu serialises ferretdb.New: it writes a package-level variable of FerretDB
// (version.Get().Package) and would otherwise be a data race when parallel tests start servers.
var newMu sync.Mutex

// Start runs FerretDB with the SQLite backend and returns once it answers a ping from the real
// MongoDB driver, so callers never race the server's readiness. ctx bounds only the start-up; the
// server then runs until Close.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.DataDir == "" {
		return nil, errors.New("embeddedmongo start: data dir is required")
	}
	if cfg.IndexInterval < 0 {
		return nil, fmt.Errorf("embeddedmongo start: negative index interval %v", cfg.IndexInterval)
	}
	if cfg.Logger == nil {
		cfg.Logger = defaultLogger()
	}

	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("embeddedmongo start: data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embeddedmongo start: data dir: %w", err)
	}

	addr, err := probeListen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embeddedmongo start: %w", err)
	}

	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    cfg.Logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL(dir),
	})
	newMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("embeddedmongo start: %w", err)
	}

	// Run's context is deliberately not derived from ctx: the server must outlive Start.
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Server{
		uri:    f.MongoDBURI(),
		dir:    dir,
		log:    cfg.Logger,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		// Run only ever returns nil, after ctx is cancelled and every connection has closed.
		_ = f.Run(runCtx)
	}()

	if err := s.connect(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("embeddedmongo start: %w", err)
	}
	if cfg.IndexInterval > 0 {
		// Data from an earlier run (a restarted local stack) is indexed before anyone writes.
		if err := s.EnsureAllIndexes(ctx); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("embeddedmongo start: %w", err)
		}
		s.loopDone = make(chan struct{})
		go func() {
			defer close(s.loopDone)
			s.indexLoop(runCtx, cfg.IndexInterval)
		}()
	}
	return s, nil
}

// probeListen binds addr and releases it at once, returning the concrete address (the free port
// the kernel chose when addr's port is 0).
//
// Why not let FerretDB bind ":0" itself: when ferretdb.New fails to listen it has already opened
// the SQLite backend and never closes it, and FerretDB's leak tracker then panics the whole
// process from a finalizer at the next garbage collection. Binding first turns the usual failures
// (port in use, bad address) into a plain error before FerretDB is involved. What remains is the
// tiny window between this Close and FerretDB's bind, in which another process would have to take
// this exact port.
//
// Port 0 is served from below the kernel's ephemeral range (Linux's starts at 32768): an
// ephemeral port, free when probed, is also what every outgoing connection of the process (and of
// parallel tests) takes as its local port, and one of those took it in that window now and then
// (CI saw "address already in use"). Below the range only another explicit bind can collide.
func probeListen(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && port == "0" {
		for range 20 {
			try := net.JoinHostPort(host, strconv.Itoa(probeLow+rand.IntN(probeHigh-probeLow)))
			if bound, err := bindAndRelease(try); err == nil {
				return bound, nil
			}
		}
	}
	return bindAndRelease(addr)
}

// The range probeListen draws port 0 from: registered ports that are neither well known nor
// ephemeral.
const probeLow, probeHigh = 20000, 32000

func bindAndRelease(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	bound := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("listen %s: release probe: %w", addr, err)
	}
	return bound, nil
}

// sqliteURL builds the URI FerretDB's SQLite backend wants: the "file" scheme and a path that ends
// with a slash (a directory; FerretDB keeps one SQLite file per database in it). FerretDB itself
// adds WAL journaling and a busy timeout. synchronous(normal) is SQLite's recommended setting
// with WAL: a commit no longer waits for fsync, which makes single-document upserts about 30%
// faster; a crash of the process loses nothing, and a power cut can lose only the last commits
// (never corrupts), which is fine for tests and the local stack.
func sqliteURL(dir string) string {
	return (&url.URL{
		Scheme:   "file",
		Path:     filepath.ToSlash(dir) + "/",
		RawQuery: url.Values{"_pragma": {"synchronous(normal)"}}.Encode(),
	}).String()
}

// connect proves the server speaks the wire protocol to the driver the read model uses, and keeps
// the client as s.admin.
func (s *Server) connect(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	client, err := mongo.Connect(options.Client().ApplyURI(s.uri))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return fmt.Errorf("ping %s: %w", s.uri, err)
	}
	s.admin = client
	return nil
}

// URI returns the connection string, "mongodb://127.0.0.1:PORT/". No options are needed: the
// driver sees a standalone server and therefore never uses retryable writes or transactions.
func (s *Server) URI() string { return s.uri }

// Close stops accepting connections and waits until FerretDB has shut down and closed its SQLite
// files. FerretDB gives connected clients up to 3 s to leave, so disconnect clients first for a
// fast Close. It is safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.admin != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if derr := s.admin.Disconnect(ctx); derr != nil {
				err = fmt.Errorf("embeddedmongo close: disconnect admin client: %w", derr)
			}
		}
		s.cancel()
	})
	<-s.done
	if s.loopDone != nil {
		<-s.loopDone
	}
	return err
}
