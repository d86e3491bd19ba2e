// Package querysvc wires query-svc: the read model in MongoDB, the projector
// that follows EventStoreDB into it, and the gRPC query API, with health
// checks and graceful shutdown. cmd/query-svc parses the configuration and
// calls Run; the one-process local stack and end-to-end tests call Run
// in-process.
package querysvc

import (
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/query"
	"github.com/acme/cart/internal/readmodel"
	"github.com/acme/cart/internal/readside"
)

// Defaults of Config.
const (
	DefaultListen         = "127.0.0.1:50052"
	DefaultESDBURL        = "esdb://127.0.0.1:2113?tls=false"
	DefaultMongoURI       = "mongodb://127.0.0.1:27017/"
	DefaultMongoDB        = "cart"
	DefaultHealthInterval = 5 * time.Second
	// DefaultMaxLag is how stale GetCart's answers may get before the
	// replica reports NOT_SERVING for it: far above a healthy projector's
	// lag (milliseconds), below what a user notices as a lost change.
	DefaultMaxLag = 30 * time.Second
	// DefaultLeaseTTL is how long the projector lease lasts unrenewed: a
	// replica that dies unannounced is replaced within about 1.6 of it.
	DefaultLeaseTTL = 15 * time.Second
	// DefaultAdminListen keeps the admin API, which rewrites the read
	// model, off every network but the host's own.
	DefaultAdminListen = "127.0.0.1:50053"
)

// Config is everything query-svc needs to run.
type Config struct {
	// ServerConfig is the query API's gRPC server: listen address,
	// shutdown timeout, and how often MongoDB and EventStoreDB are pinged
	// for the health service.
	rpc.ServerConfig
	// ESDBURL is the EventStoreDB connection string (esdb:// or esdb+discover://).
	ESDBURL string
	// MongoURI is the MongoDB connection string; it may hold a password.
	MongoURI string
	// MongoDB is the database of the read model.
	MongoDB string
	// AdminListen is the address of the admin API (CartAdminService);
	// empty keeps it off.
	AdminListen string
	// AdminListener, if set, is used instead of listening on AdminListen.
	AdminListener net.Listener
	// MaxWait caps how long GetCart waits for min_version.
	MaxWait time.Duration
	// MaxLag is the projection lag (how old the oldest event the read
	// model lacks is) above which GetCart's health names go NOT_SERVING;
	// they come back at half of it.
	MaxLag time.Duration
	// FollowInterval is how often the read model's active collection is
	// checked, so that a rebuild run on another replica is followed.
	FollowInterval time.Duration
	// MongoCompat names a MongoDB-compatible store whose limits the read
	// model must work around: "" for MongoDB, "ferretdb" for FerretDB
	// (see readmodel.FerretDBCompat). ReadModel, if set, is used as is.
	MongoCompat string
	ReadModel   *readmodel.Options
	// Decode turns stored events into domain events for the projector and
	// the parking lot's replay (nil: cart.Unmarshal). It is how a build
	// that learned to read events an older one parked (an upcaster, a new
	// type) is wired in, and how tests play such a deploy.
	Decode projection.Decoder
	// LeaseTTL is the projector lease's validity: of the query-svc
	// replicas on one database only the lease holder runs the projector,
	// renewing every LeaseTTL/3; the others serve reads and take over
	// when it stops renewing.
	LeaseTTL time.Duration
	// ProgressInterval is how often a replica without the lease reads the
	// checkpoint while GetCart calls wait for min_version.
	ProgressInterval time.Duration
	// ProjectorCacheBytes bounds the documents the projector remembers so
	// that a cart's next event needs no read (0: the projection's
	// default; -1: off). Raise it where many carts are active at once and
	// memory allows.
	ProjectorCacheBytes int
	// LeaseHolder is this replica's holder ID; empty: hostname, pid and a
	// random suffix, unique per process.
	LeaseHolder string
	// LiveStarted, if set, is called with the read side before it runs,
	// so that an embedder (tests, metrics) can watch the replica's role
	// (readside.Live.Active).
	LiveStarted func(*readside.Live)
	// TracerProvider, if set, receives the service's spans (a test's
	// in-memory recorder); nil: the OTEL_* environment decides
	// (internal/tracing), off when it says nothing.
	TracerProvider trace.TracerProvider
}

// WithDefaults fills every empty field with its default, so that a caller
// sets only what differs and the start-up log shows what is in effect.
func (c Config) WithDefaults() Config {
	c.ServerConfig = c.ServerConfig.WithDefaults(DefaultListen, DefaultHealthInterval)
	if c.ESDBURL == "" {
		c.ESDBURL = DefaultESDBURL
	}
	if c.MongoURI == "" {
		c.MongoURI = DefaultMongoURI
	}
	if c.MongoDB == "" {
		c.MongoDB = DefaultMongoDB
	}
	if c.MaxWait == 0 {
		c.MaxWait = query.DefaultMaxWait
	}
	if c.MaxLag == 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.FollowInterval == 0 {
		c.FollowInterval = readside.DefaultFollowInterval
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = readside.DefaultProgressInterval
	}
	if c.ReadModel == nil && c.MongoCompat == "ferretdb" {
		o := readmodel.FerretDBCompat()
		c.ReadModel = &o
	}
	return c
}

// Validate reports every problem of the configuration at once. Messages
// never show a password.
func (c Config) Validate() error {
	errs := c.ServerConfig.Validate()
	if c.AdminListen != "" && c.AdminListener == nil {
		if err := rpc.CheckAddr("admin-listen", c.AdminListen); err != nil {
			errs = append(errs, err)
		}
	}
	if err := eventstore.ValidateConnectionString(c.ESDBURL); err != nil {
		errs = append(errs, fmt.Errorf("esdb: %w", err))
	}
	if !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		errs = append(errs, fmt.Errorf("mongo-uri %q: must start with mongodb:// or mongodb+srv://", redactURI(c.MongoURI)))
	}
	if c.MongoDB == "" || strings.ContainsAny(c.MongoDB, `/\. "$`) || len(c.MongoDB) > 63 {
		errs = append(errs, fmt.Errorf("mongo-db %q: must be 1 to 63 characters without /\\. \"$ or spaces", c.MongoDB))
	}
	if c.MongoCompat != "" && c.MongoCompat != "ferretdb" {
		errs = append(errs, fmt.Errorf("mongo-compat %q: want empty (MongoDB) or ferretdb", c.MongoCompat))
	}
	if c.ProjectorCacheBytes < -1 {
		errs = append(errs, fmt.Errorf("projector-cache-bytes %d: want -1 (off), 0 (default) or a size", c.ProjectorCacheBytes))
	}
	for name, d := range map[string]time.Duration{"max-wait": c.MaxWait, "follow-interval": c.FollowInterval,
		"lease-ttl": c.LeaseTTL, "progress-interval": c.ProgressInterval, "max-lag": c.MaxLag} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", name, d))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid query-svc configuration:\n%w", err)
	}
	return nil
}

// LogValue shows the effective configuration with passwords masked.
func (c Config) LogValue() slog.Value {
	admin := c.AdminListen
	if c.AdminListener != nil {
		admin = c.AdminListener.Addr().String()
	}
	attrs := append(c.ServerConfig.LogAttrs(),
		slog.String("esdb", eventstore.Redact(c.ESDBURL)),
		slog.String("mongo_uri", redactURI(c.MongoURI)),
		slog.String("mongo_db", c.MongoDB),
		slog.String("mongo_compat", c.MongoCompat),
		slog.String("admin_listen", admin),
		slog.Duration("max_wait", c.MaxWait),
		slog.Duration("max_lag", c.MaxLag),
		slog.Duration("follow_interval", c.FollowInterval),
		slog.Duration("lease_ttl", c.LeaseTTL),
		slog.Duration("progress_interval", c.ProgressInterval),
		slog.Int("projector_cache_bytes", c.ProjectorCacheBytes),
	)
	return slog.GroupValue(attrs...)
}

// Flags defines query-svc's flags on fs, with environment fallbacks and
// the real defaults (what -h shows is what runs).
func (c *Config) Flags(fs *cli.FlagSet) {
	c.ServerConfig.Flags(fs, "CART_QUERY_LISTEN", DefaultListen, DefaultHealthInterval,
		"how often MongoDB and EventStoreDB are pinged for the health service")
	fs.StringVar(&c.ESDBURL, "esdb", "CART_ESDB_URL", DefaultESDBURL,
		"EventStoreDB connection string, esdb:// or esdb+discover://")
	fs.StringVar(&c.MongoURI, "mongo-uri", "CART_MONGO_URI", DefaultMongoURI,
		"MongoDB connection string of the read model")
	fs.StringVar(&c.MongoDB, "mongo-db", "CART_MONGO_DB", DefaultMongoDB, "MongoDB database of the read model")
	fs.StringVar(&c.MongoCompat, "mongo-compat", "CART_MONGO_COMPAT", "",
		"empty for MongoDB; ferretdb works around FerretDB 1.x's limits (bulk size, point reads, _id-only writes)")
	fs.StringVar(&c.AdminListen, "admin-listen", "CART_ADMIN_LISTEN", DefaultAdminListen,
		"host:port of the admin API (CartAdminService, cart:admin tokens only); loopback by default, empty: off")
	fs.DurationVar(&c.MaxWait, "max-wait", "CART_QUERY_MAX_WAIT", query.DefaultMaxWait,
		"longest GetCart waits for min_version, whatever the caller's deadline")
	fs.DurationVar(&c.MaxLag, "max-lag", "CART_MAX_LAG", DefaultMaxLag,
		"projection lag above which GetCart's health is NOT_SERVING (back at half of it)")
	fs.DurationVar(&c.FollowInterval, "follow-interval", "CART_FOLLOW_INTERVAL", readside.DefaultFollowInterval,
		"how often the active read-model collection is checked, to follow a rebuild made by another replica")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", "CART_LEASE_TTL", DefaultLeaseTTL,
		"validity of the projector lease: one replica runs the projector, the others take over when it stops renewing")
	fs.DurationVar(&c.ProgressInterval, "progress-interval", "CART_PROGRESS_INTERVAL", readside.DefaultProgressInterval,
		"how often a replica without the projector lease reads the checkpoint while GetCart waits for min_version")
	fs.IntVar(&c.ProjectorCacheBytes, "projector-cache-bytes", "CART_PROJECTOR_CACHE_BYTES", projection.DefaultCacheBytes,
		"bytes of recently written cart documents the projector keeps, so a cart's next event needs no read (-1: off)")
}

// redactURI masks the password of scheme://user:password@hosts/..., which
// both MongoDB and EventStoreDB connection strings may carry.
func redactURI(uri string) string {
	i := strings.Index(uri, "://")
	if i < 0 {
		return uri
	}
	rest := uri[i+3:]
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return uri
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return uri
	}
	return uri[:i+3] + user + ":xxxxx" + rest[at:]
}
