// Package querysvc wires query-svc: the read model in MongoDB, the projector
// that follows EventStoreDB into it, and the gRPC query API, with health
// checks and graceful shutdown. cmd/query-svc parses the configuration and
// calls Run; the one-process local stack and end-to-end tests call Run
// in-process.
package querysvc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/acme/cart/internal/projection"
)

// Defaults of Config.
const (
	DefaultListen          = "127.0.0.1:50052"
	DefaultESDBURL         = "esdb://127.0.0.1:2113?tls=false"
	DefaultMongoURI        = "mongodb://127.0.0.1:27017/"
	DefaultMongoDB         = "cart"
	DefaultShutdownTimeout = 10 * time.Second
	DefaultHealthInterval  = 5 * time.Second
)

// Config is everything query-svc needs to run.
type Config struct {
	// Listen is the gRPC address of the query API.
	Listen string
	// Listener, if set, is used instead of listening on Listen, so that a
	// caller that binds port 0 knows the address before Run starts.
	Listener net.Listener
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
	// MaxWait caps how long GetCart waits for min_version (0: the query
	// package's default).
	MaxWait time.Duration
	// ShutdownTimeout bounds how long calls in flight may finish at
	// shutdown (0: DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// HealthInterval is how often MongoDB and EventStoreDB are pinged for
	// the health service, and how often the read model's active collection
	// is checked, so that a rebuild run on another replica is followed
	// (0: DefaultHealthInterval).
	HealthInterval time.Duration
	// Decode turns stored events into domain events for the projector and
	// the parking lot's replay (nil: cart.Unmarshal). It is how a build
	// that learned to read events an older one parked (an upcaster, a new
	// type) is wired in, and how tests play such a deploy.
	Decode projection.Decoder
}

// WithDefaults fills every empty field with its default, so that a caller
// sets only what differs.
func (c Config) WithDefaults() Config {
	if c.Listen == "" && c.Listener == nil {
		c.Listen = DefaultListen
	}
	if c.ESDBURL == "" {
		c.ESDBURL = DefaultESDBURL
	}
	if c.MongoURI == "" {
		c.MongoURI = DefaultMongoURI
	}
	if c.MongoDB == "" {
		c.MongoDB = DefaultMongoDB
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = DefaultHealthInterval
	}
	return c
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	checkAddr := func(name, addr string) {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: must be host:port", name, addr))
		}
	}
	if c.Listener == nil {
		checkAddr("listen", c.Listen)
	}
	if c.AdminListen != "" && c.AdminListener == nil {
		checkAddr("admin-listen", c.AdminListen)
	}
	if !strings.HasPrefix(c.ESDBURL, "esdb://") && !strings.HasPrefix(c.ESDBURL, "esdb+discover://") {
		errs = append(errs, fmt.Errorf("esdb %q: must start with esdb:// or esdb+discover://", redactURI(c.ESDBURL)))
	}
	if !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		errs = append(errs, fmt.Errorf("mongo-uri %q: must start with mongodb:// or mongodb+srv://", redactURI(c.MongoURI)))
	}
	if c.MongoDB == "" || strings.ContainsAny(c.MongoDB, `/\. "$`) || len(c.MongoDB) > 63 {
		errs = append(errs, fmt.Errorf("mongo-db %q: must be 1 to 63 characters without /\\. \"$ or spaces", c.MongoDB))
	}
	for name, d := range map[string]time.Duration{"max-wait": c.MaxWait, "shutdown-timeout": c.ShutdownTimeout, "health-interval": c.HealthInterval} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must not be negative", name, d))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid query-svc configuration:\n%w", err)
	}
	return nil
}

// LogValue shows the configuration with passwords masked.
func (c Config) LogValue() slog.Value {
	listen, admin := c.Listen, c.AdminListen
	if c.Listener != nil {
		listen = c.Listener.Addr().String()
	}
	if c.AdminListener != nil {
		admin = c.AdminListener.Addr().String()
	}
	return slog.GroupValue(
		slog.String("listen", listen),
		slog.String("esdb", redactURI(c.ESDBURL)),
		slog.String("mongo_uri", redactURI(c.MongoURI)),
		slog.String("mongo_db", c.MongoDB),
		slog.String("admin_listen", admin),
		slog.Duration("max_wait", c.MaxWait),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.Duration("health_interval", c.HealthInterval),
	)
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
