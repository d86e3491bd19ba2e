package e2e_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/testing/authtest"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// callers are the three APIs reached without the harness's default token,
// each through one call that succeeds for a token granting everything:
// command-svc adds to victim's cart, query-svc reads its history, the admin
// API lists parked events.
type callers struct {
	cmd   cartv1.CartCommandServiceClient
	query cartv1.CartQueryServiceClient
	admin cartv1.CartAdminServiceClient
}

func (e *env) tokenless() callers {
	return callers{
		cmd:   cartv1.NewCartCommandServiceClient(dial(e.t, e.cmdAddr)),
		query: cartv1.NewCartQueryServiceClient(dial(e.t, e.queryAddr)),
		admin: cartv1.NewCartAdminServiceClient(dial(e.t, e.adminAddr)),
	}
}

// withBearer is a call context carrying token, or no authorization at all
// when token is empty.
func withBearer(t *testing.T, token string) context.Context {
	if token == "" {
		return ctx(t)
	}
	return metadata.AppendToOutgoingContext(ctx(t), "authorization", "Bearer "+token)
}

// each calls every API once with c and returns the errors by API name.
func (cs callers) each(c context.Context, victim string) map[string]error {
	_, cmdErr := cs.cmd.AddItem(c, &cartv1.AddItemRequest{UserId: victim, ProductId: "sku-1", Quantity: 1})
	_, queryErr := cs.query.GetCartHistory(c, &cartv1.GetCartHistoryRequest{UserId: victim})
	_, adminErr := cs.admin.ListParkedEvents(c, &cartv1.ListParkedEventsRequest{})
	return map[string]error{"command-svc": cmdErr, "query-svc": queryErr, "admin API": adminErr}
}

// wantEverywhere checks that every API answered code.
func wantEverywhere(t *testing.T, errs map[string]error, code codes.Code) {
	t.Helper()
	for api, err := range errs {
		if status.Code(err) != code {
			t.Errorf("%s: %v; want %v", api, err, code)
		}
	}
}

// TestAuthentication is the token half of the trust boundary (issue 8):
// every forged, stale or foreign token is refused by all three APIs with one
// message that says nothing, health needs no token, the admin API needs
// cart:admin, and a key rotated into the JWKS works without a restart.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	trusted := authtest.NewRSAKey(t, "e2e-rsa-1")
	p := newIdP(t, trusted)
	e := newEnv(t, withIdP(p))
	e.show("sku-1", eur(2, 0))
	apis := e.tokenless()
	const victim = "victim"

	t.Run("refused tokens", func(t *testing.T) {
		now := time.Now()
		// Claims that would grant everything if the token were accepted,
		// so that any acceptance shows as a success below.
		all := p.claims("mallory", auth.ScopeAny, auth.ScopeAdmin)
		stranger := authtest.NewRSAKey(t, "e2e-stranger") // never published
		cases := []struct{ name, token string }{
			{"no token", ""},
			{"expired", trusted.Sign(t, all.With("iat", now.Add(-20*time.Minute).Unix()).With("exp", now.Add(-10*time.Minute).Unix()))},
			{"not yet valid", trusted.Sign(t, all.With("nbf", now.Add(10*time.Minute).Unix()))},
			{"wrong issuer", trusted.Sign(t, all.With("iss", "https://other-idp.test"))},
			{"wrong audience", trusted.Sign(t, all.With("aud", "another-service"))},
			{"unknown key", stranger.Sign(t, all)},
			{"alg none", authtest.UnsignedToken(t, trusted.ID, all)},
			{"HS256 keyed with the public key", authtest.HS256WithPublicKey(t, trusted, all)},
			{"tampered payload", authtest.Tamper(t, trusted.Sign(t, p.claims("mallory")), func(c authtest.Claims) authtest.Claims {
				return c.With("scope", auth.ScopeAny+" "+auth.ScopeAdmin)
			})},
		}
		var message string
		for _, tc := range cases {
			for api, err := range apis.each(withBearer(t, tc.token), victim) {
				st := status.Convert(err)
				if st.Code() != codes.Unauthenticated {
					t.Errorf("%s on %s: %v; want UNAUTHENTICATED", tc.name, api, err)
					continue
				}
				if message == "" {
					message = st.Message()
				}
				if st.Message() != message || len(st.Details()) > 0 {
					t.Errorf("%s on %s: message %q, details %v; want the one generic message %q and no details", tc.name, api, st.Message(), st.Details(), message)
				}
			}
		}
		for _, word := range []string{"expire", "nbf", "not before", "issuer", "audience", "kid", "alg", "none", "hs256", "hmac", "signature", "verify", "scope", "mallory"} {
			if strings.Contains(strings.ToLower(message), word) {
				t.Errorf("the message %q tells which check failed (%q)", message, word)
			}
		}
		if h := e.history(victim); len(h) != 0 {
			t.Fatalf("refused calls wrote %v", h)
		}

		// The same claims, properly signed, pass everywhere: the refusals
		// above are the tokens' doing.
		wantEverywhere(t, apis.each(withBearer(t, trusted.Sign(t, all)), victim), codes.OK)
		if h := e.history(victim); len(h) != 1 || h[0].GetPrincipal() != "mallory" {
			t.Fatalf("history after the accepted call = %v", h)
		}
	})

	t.Run("health needs no token", func(t *testing.T) {
		for name, addr := range map[string]string{"command-svc": e.cmdAddr, "query-svc": e.queryAddr, "admin API": e.adminAddr} {
			resp, err := healthpb.NewHealthClient(dial(t, addr)).Check(ctx(t), &healthpb.HealthCheckRequest{})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("%s health without a token = %v, %v; want SERVING", name, resp, err)
			}
		}
	})

	t.Run("admin API needs cart:admin", func(t *testing.T) {
		cases := []struct {
			name  string
			token string
			want  codes.Code
		}{
			{"no token", "", codes.Unauthenticated},
			{"user without scopes", trusted.Sign(t, p.claims("alice")), codes.PermissionDenied},
			{"service with cart:any only", trusted.Sign(t, p.claims("orders-svc", auth.ScopeAny)), codes.PermissionDenied},
			{"unrelated scopes", trusted.Sign(t, p.claims("ops", "openid", "cart:admins", "admin")), codes.PermissionDenied},
			{"cart:admin", trusted.Sign(t, p.claims("ops", auth.ScopeAdmin)), codes.OK},
		}
		for _, tc := range cases {
			_, err := apis.admin.ListParkedEvents(withBearer(t, tc.token), &cartv1.ListParkedEventsRequest{})
			if status.Code(err) != tc.want {
				t.Errorf("%s: ListParkedEvents = %v; want %v", tc.name, err, tc.want)
			}
			// A stream is authenticated by other interceptors than a unary call.
			stream, err := apis.admin.VerifyReadModel(withBearer(t, tc.token), &cartv1.VerifyReadModelRequest{})
			for err == nil {
				_, err = stream.Recv()
			}
			if err == io.EOF {
				err = nil
			}
			if status.Code(err) != tc.want {
				t.Errorf("%s: VerifyReadModel = %v; want %v", tc.name, err, tc.want)
			}
		}
	})

	// Last: it withdraws the key the default clients use.
	t.Run("JWKS rotated while running", func(t *testing.T) {
		next := authtest.NewECKey(t, "e2e-ec-2")
		rotated := next.Sign(t, p.claims("rotated-svc", auth.ScopeAny, auth.ScopeAdmin))
		old := trusted.Sign(t, p.claims("old-svc", auth.ScopeAny, auth.ScopeAdmin))

		wantEverywhere(t, apis.each(withBearer(t, rotated), victim), codes.Unauthenticated)

		p.jwks.Rotate(trusted, next)
		wantEverywhere(t, apis.each(withBearer(t, rotated), victim), codes.OK)
		wantEverywhere(t, apis.each(withBearer(t, old), victim), codes.OK)

		p.jwks.Rotate(next)
		wantEverywhere(t, apis.each(withBearer(t, old), victim), codes.Unauthenticated)
		wantEverywhere(t, apis.each(withBearer(t, rotated), victim), codes.OK)
	})
}
