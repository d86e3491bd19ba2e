package e2e_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/acme/cart/internal/api/guard"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/catalog"
	"github.com/acme/cart/internal/commandsvc"
	"github.com/acme/cart/internal/dev/devauth"
	"github.com/acme/cart/internal/dev/embeddedmongo"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/querysvc"
	"github.com/acme/cart/internal/testing/authtest"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// env is the product started piece by piece in-process, so that a test can
// stop and restart query-svc while the stores and command-svc keep running.
type env struct {
	t        *testing.T
	esdb     *standin.Server
	mongoURI string
	mongoDB  string
	cmd      cartv1.CartCommandServiceClient
	query    cartv1.CartQueryServiceClient
	admin    cartv1.CartAdminServiceClient

	cmdAddr, queryAddr, adminAddr string
	stopQuery                     func()
	// cmdMetricsAddr and queryMetricsAddr serve /metrics (query-svc's
	// with pprof, command-svc's without); queryMetricsAddr changes with
	// every (re)start of query-svc.
	cmdMetricsAddr, queryMetricsAddr string

	// decode is query-svc's event decoder from its next (re)start on; nil:
	// the default. Tests set it to play a deploy that reads new events.
	decode projection.Decoder
	// tokens signs the bearer tokens the services verify (a dev key in a
	// temporary directory); the clients above call as a backend service
	// with cart:any and cart:admin unless a call says otherwise (as).
	tokens *devauth.Minter
	// prices is command-svc's catalog; tests set the price a request
	// shows (show) before sending it.
	prices *catalog.Static
	// rate is command-svc's rate limit (zero: off); withRateLimit sets it.
	rate guard.RateLimit
	// tp, when set (withTracing), receives both services' spans.
	tp trace.TracerProvider
	// idp, when set (withIdP), replaces the dev key: the services trust
	// its JWKS file and token signs with its key.
	idp *idp
}

// envOption changes how newEnv starts the product, before anything runs.
type envOption func(*env)

// withRateLimit starts command-svc with a per-principal rate limit.
func withRateLimit(r guard.RateLimit) envOption { return func(e *env) { e.rate = r } }

// withIdP makes the services trust p instead of the dev key, so that a test
// can sign tokens with any claims and headers and rotate the key set while
// the services run.
func withIdP(p *idp) envOption { return func(e *env) { e.idp = p } }

// The issuer and audience the services require when an idp is set.
const (
	idpIssuer   = "https://idp.e2e.test"
	idpAudience = "cart-e2e"
)

// idp is an identity provider a test controls: a JWKS file the services
// read, and the key that signs the tokens token mints.
type idp struct {
	jwks *authtest.JWKSFile
	key  *authtest.Key
}

// newIdP publishes key and others in a fresh JWKS file; key signs the
// tokens of token, as, and the default clients.
func newIdP(t *testing.T, key *authtest.Key, others ...*authtest.Key) *idp {
	return &idp{jwks: authtest.NewJWKSFile(t, append([]*authtest.Key{key}, others...)...), key: key}
}

// claims are those of a token the services accept: our issuer and
// audience, sub, valid for a minute, and scopes in the scope claim.
func (p *idp) claims(sub string, scopes ...string) authtest.Claims {
	c := authtest.NewClaims(idpIssuer, idpAudience, sub, time.Now(), time.Minute)
	if len(scopes) > 0 {
		c = c.With("scope", strings.Join(scopes, " "))
	}
	return c
}

// withTracing gives both services tp as their tracer provider.
func withTracing(tp trace.TracerProvider) envOption { return func(e *env) { e.tp = tp } }

// serviceSubject is who the default clients are: a backend service.
const serviceSubject = "e2e-service"

// security is how the services verify callers in these tests: real JWTs.
func (e *env) security() rpc.SecurityConfig {
	if e.idp != nil {
		return rpc.SecurityConfig{AuthJWKS: e.idp.jwks.Path, AuthIssuer: idpIssuer, AuthAudience: idpAudience, Reflection: true}
	}
	vc := e.tokens.VerifierConfig()
	return rpc.SecurityConfig{AuthJWKS: vc.JWKS, AuthIssuer: vc.Issuer, AuthAudience: vc.Audience, Reflection: true}
}

// token mints a bearer token for sub with scopes, valid for a minute.
func (e *env) token(sub string, scopes ...string) string {
	e.t.Helper()
	if e.idp != nil {
		return e.idp.key.Sign(e.t, e.idp.claims(sub, scopes...))
	}
	tok, err := e.tokens.Mint(sub, scopes, time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// as is a call context that authenticates as sub with scopes instead of
// the default service token.
func (e *env) as(sub string, scopes ...string) context.Context {
	return metadata.AppendToOutgoingContext(ctx(e.t), "authorization", "Bearer "+e.token(sub, scopes...))
}

// show makes the catalog price product at m, the price the request about
// to be sent shows, and returns m.
func (e *env) show(product string, m *cartv1.Money) *cartv1.Money {
	e.t.Helper()
	if err := e.prices.Set(product, cart.Money{CurrencyCode: m.GetCurrencyCode(), Units: m.GetUnits(), Nanos: m.GetNanos()}); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// bearer sends a token with every call that does not carry its own.
type bearer string

func (b bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get("authorization")) > 0 {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

func logger(t *testing.T) *slog.Logger {
	if os.Getenv("E2E_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newEnv starts the product with the options; without them the services
// trust the dev key, trace nothing and command-svc has no rate limit.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, esdb: standin.Start(t), prices: &catalog.Static{}}
	for _, o := range opts {
		o(e)
	}
	if e.idp == nil {
		var err error
		if e.tokens, err = devauth.Ensure(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	mongo := embeddedmongo.StartForTest(t)
	e.mongoURI = mongo.URI()
	e.mongoDB = mongo.NewDatabaseName(t)

	lis, mlis := listen(t), listen(t)
	e.cmdMetricsAddr = mlis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- commandsvc.Run(ctx, commandsvc.Config{ServerConfig: rpc.ServerConfig{Listener: lis, Security: e.security(), MetricsListener: mlis},
			ESDBURL: e.esdb.ConnectionString(), SnapshotEvery: 20, Catalog: e.prices, RateLimit: e.rate,
			TracerProvider: e.tp}, logger(t).With("service", "command-svc"))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("command-svc: %v", err)
		}
	})
	e.cmdAddr = lis.Addr().String()
	conn := e.dial(e.cmdAddr)
	waitServing(t, conn)
	e.cmd = cartv1.NewCartCommandServiceClient(conn)

	qlis, alis := listen(t), listen(t)
	e.queryAddr, e.adminAddr = qlis.Addr().String(), alis.Addr().String()
	e.runQuery(qlis, alis)
	t.Cleanup(func() {
		if e.stopQuery != nil {
			e.stopQuery()
		}
	})
	qconn := e.dial(e.queryAddr)
	e.query = cartv1.NewCartQueryServiceClient(qconn)
	e.admin = cartv1.NewCartAdminServiceClient(e.dial(e.adminAddr))
	waitServing(t, qconn)
	return e
}

// listen binds a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// restartQuery starts query-svc again on the addresses it had.
func (e *env) restartQuery() {
	e.t.Helper()
	e.runQuery(relisten(e.t, e.queryAddr), relisten(e.t, e.adminAddr))
	waitServing(e.t, dial(e.t, e.queryAddr))
}

// runQuery runs query-svc until stopQuery.
func (e *env) runQuery(lis, admin net.Listener) {
	mlis := listen(e.t)
	e.queryMetricsAddr = mlis.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- querysvc.Run(ctx, querysvc.Config{
			ServerConfig: rpc.ServerConfig{Listener: lis, HealthInterval: 100 * time.Millisecond, Security: e.security(),
				MetricsListener: mlis, Pprof: true},
			AdminListener:  admin,
			TracerProvider: e.tp,
			ESDBURL:        e.esdb.ConnectionString(),
			MongoURI:       e.mongoURI,
			MongoDB:        e.mongoDB,
			MongoCompat:    "ferretdb",
			Decode:         e.decode,
		}, logger(e.t).With("service", "query-svc"))
	}()
	e.stopQuery = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("query-svc: %v", err)
		}
		e.stopQuery = nil
	}
}

// relisten binds addr again after the previous server let it go.
func relisten(t *testing.T, addr string) net.Listener {
	t.Helper()
	for i := 0; ; i++ {
		lis, err := net.Listen("tcp", addr)
		if err == nil {
			return lis
		}
		if i > 200 {
			t.Fatalf("listen %s: %v", addr, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (e *env) dial(addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	e.t.Helper()
	return dial(e.t, addr, append([]grpc.DialOption{grpc.WithPerRPCCredentials(bearer(e.token(serviceSubject, auth.ScopeAny, auth.ScopeAdmin)))}, opts...)...)
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func waitServing(t *testing.T, conn *grpc.ClientConn) {
	t.Helper()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving after 20s: %v %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
