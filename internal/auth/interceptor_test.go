package auth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/testing/authtest"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// principalHeader is how the test handlers tell the client whom they saw.
const principalHeader = "x-test-principal"

// queryServer answers GetCart the way a real handler authorizes: the cart
// named in the reply is the one AuthorizeUser chose.
type queryServer struct {
	cartv1.UnimplementedCartQueryServiceServer
}

func (queryServer) GetCart(ctx context.Context, req *cartv1.GetCartRequest) (*cartv1.GetCartResponse, error) {
	if p, ok := auth.FromContext(ctx); ok {
		grpc.SetHeader(ctx, metadata.Pairs(principalHeader, p.Subject))
	}
	actor, err := auth.AuthorizeUser(ctx, req.GetUserId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &cartv1.GetCartResponse{Cart: &cartv1.Cart{UserId: actor.UserID}}, nil
}

// adminServer's stream needs ScopeAdmin.
type adminServer struct {
	cartv1.UnimplementedCartAdminServiceServer
}

func (adminServer) RebuildReadModel(_ *cartv1.RebuildReadModelRequest, stream grpc.ServerStreamingServer[cartv1.RebuildReadModelResponse]) error {
	ctx := stream.Context()
	if p, ok := auth.FromContext(ctx); ok {
		stream.SetHeader(metadata.Pairs(principalHeader, p.Subject))
	}
	if err := auth.RequireScope(ctx, auth.ScopeAdmin); err != nil {
		return toStatus(err)
	}
	return stream.Send(&cartv1.RebuildReadModelResponse{})
}

// toStatus is the mapping the API layer is expected to do.
func toStatus(err error) error {
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, "unauthenticated")
	case errors.Is(err, auth.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, "permission denied")
	case errors.Is(err, auth.ErrUserRequired):
		return status.Error(codes.InvalidArgument, "user_id required")
	}
	return status.Error(codes.Internal, "internal")
}

// serve runs a real gRPC server on loopback with a's interceptors, the test
// services, health and reflection, and returns a client connection.
func serve(t *testing.T, a *auth.Authenticator) *grpc.ClientConn {
	t.Helper()
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(a.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(a.StreamServerInterceptor()),
	)
	cartv1.RegisterCartQueryServiceServer(srv, queryServer{})
	cartv1.RegisterCartAdminServiceServer(srv, adminServer{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	reflection.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

type fixture struct {
	user, service, admin, expired, forged string
	verifier                              *auth.Verifier
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	key := authtest.NewECKey(t, "ec-1")
	now := time.Now() // the real clock: the server verifies at its own time
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		JWKS:     authtest.NewJWKSFile(t, key).Path,
		Issuer:   testIssuer,
		Audience: testAudience,
		Logger:   testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := func(sub, scope string) authtest.Claims {
		return authtest.NewClaims(testIssuer, testAudience, sub, now, time.Hour).With("scope", scope)
	}
	user := key.Sign(t, c("alice", "openid"))
	return fixture{
		verifier: v,
		user:     user,
		service:  key.Sign(t, c("checkout-svc", auth.ScopeAny)),
		admin:    key.Sign(t, c("ops", auth.ScopeAdmin)),
		expired:  key.Sign(t, authtest.NewClaims(testIssuer, testAudience, "alice", now.Add(-2*time.Hour), time.Hour)),
		forged: authtest.Tamper(t, user, func(c authtest.Claims) authtest.Claims {
			return c.With("scope", auth.ScopeAny)
		}),
	}
}

func withMD(kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), kv...)
}

func bearer(tok string) []string { return []string{"authorization", "Bearer " + tok} }

func TestInterceptorUnary(t *testing.T) {
	f := newFixture(t)
	logs := &logBuffer{}
	a := auth.New(f.verifier, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	client := cartv1.NewCartQueryServiceClient(serve(t, a))

	tests := []struct {
		name          string
		md            []string
		user          string
		wantCode      codes.Code
		wantPrincipal string
		wantCart      string
		wantLog       string // a reason the server logs, for rejections
	}{
		{name: "no token", wantCode: codes.Unauthenticated, wantLog: "no authorization metadata"},
		{name: "not bearer", md: []string{"authorization", "Basic YWxpY2U6cHc="}, wantCode: codes.Unauthenticated, wantLog: "not a Bearer"},
		{name: "empty bearer", md: []string{"authorization", "Bearer "}, wantCode: codes.Unauthenticated},
		{name: "two tokens", md: append(bearer(f.user), bearer(f.admin)...), wantCode: codes.Unauthenticated, wantLog: "more than one"},
		{name: "expired", md: bearer(f.expired), wantCode: codes.Unauthenticated, wantLog: "exp"},
		{name: "tampered", md: bearer(f.forged), wantCode: codes.Unauthenticated, wantLog: "invalid token"},
		{name: "x-principal is not a credential", md: []string{"x-principal", "alice"}, wantCode: codes.Unauthenticated},
		{name: "own cart", md: bearer(f.user), user: "alice", wantCode: codes.OK, wantPrincipal: "alice", wantCart: "alice"},
		{name: "own cart implied", md: bearer(f.user), wantCode: codes.OK, wantPrincipal: "alice", wantCart: "alice"},
		{name: "scheme case-insensitive", md: []string{"authorization", "bearer " + f.user}, wantCode: codes.OK, wantPrincipal: "alice", wantCart: "alice"},
		{name: "x-principal ignored with a token", md: append(bearer(f.user), "x-principal", "bob"), wantCode: codes.OK, wantPrincipal: "alice", wantCart: "alice"},
		{name: "other user's cart", md: bearer(f.user), user: "bob", wantCode: codes.PermissionDenied, wantPrincipal: "alice"},
		{name: "service for a user", md: bearer(f.service), user: "bob", wantCode: codes.OK, wantPrincipal: "checkout-svc", wantCart: "bob"},
		{name: "service without a user", md: bearer(f.service), wantCode: codes.InvalidArgument, wantPrincipal: "checkout-svc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr metadata.MD
			before := len(logs.String()) // only this call's lines count
			resp, err := client.GetCart(withMD(tt.md...), &cartv1.GetCartRequest{UserId: tt.user}, grpc.Header(&hdr))
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if tt.wantCode == codes.Unauthenticated {
				if msg := status.Convert(err).Message(); msg != "missing or invalid bearer token" {
					t.Errorf("message = %q, want the generic one", msg)
				}
			}
			if got := strings.Join(hdr.Get(principalHeader), ","); got != tt.wantPrincipal {
				t.Errorf("handler saw principal %q, want %q", got, tt.wantPrincipal)
			}
			if tt.wantCode == codes.OK && resp.GetCart().GetUserId() != tt.wantCart {
				t.Errorf("cart of %q, want %q", resp.GetCart().GetUserId(), tt.wantCart)
			}
			if got := logs.String()[before:]; tt.wantLog != "" && !strings.Contains(got, tt.wantLog) {
				t.Errorf("server log of this call lacks %q:\n%s", tt.wantLog, got)
			}
		})
	}
	if strings.Contains(logs.String(), f.forged) || strings.Contains(logs.String(), f.expired) {
		t.Error("a token was written to the log")
	}
}

func TestInterceptorStream(t *testing.T) {
	f := newFixture(t)
	client := cartv1.NewCartAdminServiceClient(serve(t, auth.New(f.verifier, testLogger(t))))

	tests := []struct {
		name          string
		md            []string
		wantCode      codes.Code
		wantPrincipal string
	}{
		{name: "no token", wantCode: codes.Unauthenticated},
		{name: "bad token", md: bearer(f.forged), wantCode: codes.Unauthenticated},
		{name: "user without admin scope", md: bearer(f.user), wantCode: codes.PermissionDenied, wantPrincipal: "alice"},
		{name: "cart:any is not admin", md: bearer(f.service), wantCode: codes.PermissionDenied, wantPrincipal: "checkout-svc"},
		{name: "admin", md: bearer(f.admin), wantCode: codes.OK, wantPrincipal: "ops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := client.RebuildReadModel(withMD(tt.md...), &cartv1.RebuildReadModelRequest{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			hdr, _ := stream.Header()
			if got := strings.Join(hdr.Get(principalHeader), ","); got != tt.wantPrincipal {
				t.Errorf("handler saw principal %q, want %q", got, tt.wantPrincipal)
			}
		})
	}
}

func TestInterceptorOpenMethods(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name           string
		openReflection bool
		md             []string
		wantReflection codes.Code
	}{
		{name: "reflection closed by default", wantReflection: codes.Unauthenticated},
		{name: "reflection closed, with a token", md: bearer(f.user), wantReflection: codes.OK},
		{name: "reflection opened", openReflection: true, wantReflection: codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := auth.New(f.verifier, testLogger(t), auth.WithOpenReflection(tt.openReflection))
			cc := serve(t, a)
			ctx := withMD(tt.md...)

			resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("health without a token: %v, %v", resp, err)
			}

			v1, err := reflectionv1.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := status.Code(reflectV1(v1)); got != tt.wantReflection {
				t.Errorf("reflection v1: code %v, want %v", got, tt.wantReflection)
			}
			v1alpha, err := newV1alphaClient(cc).ServerReflectionInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := status.Code(reflectV1alpha(v1alpha)); got != tt.wantReflection {
				t.Errorf("reflection v1alpha: code %v, want %v", got, tt.wantReflection)
			}
		})
	}
}

func reflectV1(s reflectionv1.ServerReflection_ServerReflectionInfoClient) error {
	req := &reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}}
	if err := s.Send(req); err != nil && err != io.EOF {
		return err
	}
	_, err := s.Recv()
	s.CloseSend()
	return err
}

func TestNewWithoutVerifierFailsClosed(t *testing.T) {
	f := newFixture(t)
	var nilVerifier *auth.Verifier
	for name, v := range map[string]auth.TokenVerifier{"nil interface": nil, "nil *Verifier": nilVerifier} {
		t.Run(name, func(t *testing.T) {
			a := auth.New(v, testLogger(t))
			if a.Insecure() {
				t.Error("Insecure() = true")
			}
			client := cartv1.NewCartQueryServiceClient(serve(t, a))
			_, err := client.GetCart(withMD(bearer(f.user)...), &cartv1.GetCartRequest{})
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("code %v (%v), want Unauthenticated", status.Code(err), err)
			}
		})
	}
}

func TestInsecure(t *testing.T) {
	logs := &logBuffer{}
	a := auth.NewInsecure(slog.New(slog.NewTextHandler(logs, nil)))
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "INSECURE") {
		t.Errorf("NewInsecure logged no warning:\n%s", logs.String())
	}
	if !a.Insecure() {
		t.Error("Insecure() = false")
	}
	cc := serve(t, a)
	query := cartv1.NewCartQueryServiceClient(cc)
	admin := cartv1.NewCartAdminServiceClient(cc)

	// The warning comes again on health, where operators look, but not
	// on every probe.
	hc := healthpb.NewHealthClient(cc)
	for i := range 3 {
		before := strings.Count(logs.String(), "INSECURE")
		if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("health Check: %v", err)
		}
		want := 0
		if i == 0 {
			want = 1
		}
		if got := strings.Count(logs.String(), "INSECURE") - before; got != want {
			t.Errorf("health check %d logged the insecure warning %d times, want %d:\n%s", i+1, got, want, logs.String())
		}
	}

	tests := []struct {
		name          string
		md            []string
		user          string
		wantCode      codes.Code
		wantPrincipal string
	}{
		{name: "anonymous may act for a named user", user: "alice", wantCode: codes.OK, wantPrincipal: "anonymous"},
		{name: "anonymous has cart:any, so must name the user", wantCode: codes.InvalidArgument, wantPrincipal: "anonymous"},
		{name: "x-principal names the caller", md: []string{"x-principal", "dev-bob"}, user: "bob", wantCode: codes.OK, wantPrincipal: "dev-bob"},
		{name: "blank x-principal", md: []string{"x-principal", "  "}, user: "bob", wantCode: codes.OK, wantPrincipal: "anonymous"},
		{name: "a token is not checked", md: []string{"authorization", "Bearer garbage"}, user: "bob", wantCode: codes.OK, wantPrincipal: "anonymous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr metadata.MD
			_, err := query.GetCart(withMD(tt.md...), &cartv1.GetCartRequest{UserId: tt.user}, grpc.Header(&hdr))
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if got := strings.Join(hdr.Get(principalHeader), ","); got != tt.wantPrincipal {
				t.Errorf("handler saw principal %q, want %q", got, tt.wantPrincipal)
			}
		})
	}
	t.Run("admin stream", func(t *testing.T) {
		stream, err := admin.RebuildReadModel(context.Background(), &cartv1.RebuildReadModelRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("Recv: %v", err)
		}
	})
}
