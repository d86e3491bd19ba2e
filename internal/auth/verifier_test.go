package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/testing/authtest"
)

const (
	testIssuer   = "https://idp.example.test/"
	testAudience = "cart"
)

var t0 = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)

// claims are those of a token the test verifiers accept at t0.
func claims(sub string) authtest.Claims {
	return authtest.NewClaims(testIssuer, testAudience, sub, t0, 10*time.Minute)
}

func newFileVerifier(t *testing.T, clock *authtest.Clock, keys ...*authtest.Key) (*auth.Verifier, *authtest.JWKSFile) {
	t.Helper()
	f := authtest.NewJWKSFile(t, keys...)
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		JWKS:               f.Path,
		Issuer:             testIssuer,
		Audience:           testAudience,
		MinRefreshInterval: 5 * time.Second,
		Now:                clock.Now,
		Logger:             testLogger(t),
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v, f
}

func TestVerifierTokens(t *testing.T) {
	rsaKey := authtest.NewRSAKey(t, "rsa-1")
	ecKey := authtest.NewECKey(t, "ec-1")
	edKey := authtest.NewEd25519Key(t, "ed-1")
	// Keys the set does not publish: one under an unknown kid, one
	// impersonating a published kid.
	stranger := authtest.NewRSAKey(t, "stranger")
	impostor := &authtest.Key{ID: "rsa-1", Alg: "RS256", Private: authtest.NewRSAKey(t, "x").Private}
	// A key of the wrong type under a published kid: ES256 header, RSA kid.
	confused := &authtest.Key{ID: "rsa-1", Alg: "ES256", Private: ecKey.Private}

	clock := authtest.NewClock(t0)
	v, _ := newFileVerifier(t, clock, rsaKey, ecKey, edKey)

	tests := []struct {
		name      string
		token     string
		wantSub   string   // empty: must be rejected
		wantScope []string // checked when accepted
		wantExp   time.Time
	}{
		{name: "RS256", token: rsaKey.Sign(t, claims("alice")), wantSub: "alice", wantExp: t0.Add(10 * time.Minute)},
		{name: "ES256", token: ecKey.Sign(t, claims("bob")), wantSub: "bob"},
		{name: "EdDSA", token: edKey.Sign(t, claims("carol")), wantSub: "carol"},
		{name: "scopes split on spaces", token: rsaKey.Sign(t, claims("svc").With("scope", "openid  cart:any cart:admin")),
			wantSub: "svc", wantScope: []string{"openid", "cart:any", "cart:admin"}},
		{name: "audience in a list", token: rsaKey.Sign(t, claims("alice").With("aud", []string{"other", testAudience})), wantSub: "alice"},
		{name: "expired within leeway", token: rsaKey.Sign(t, claims("alice").With("exp", t0.Add(-20*time.Second).Unix())), wantSub: "alice"},
		{name: "not yet valid within leeway", token: rsaKey.Sign(t, claims("alice").With("nbf", t0.Add(20*time.Second).Unix())), wantSub: "alice"},

		{name: "expired", token: rsaKey.Sign(t, claims("alice").With("exp", t0.Add(-40*time.Second).Unix()))},
		{name: "not yet valid", token: rsaKey.Sign(t, claims("alice").With("nbf", t0.Add(40*time.Second).Unix()))},
		{name: "issued in the future", token: rsaKey.Sign(t, claims("alice").With("iat", t0.Add(time.Hour).Unix()))},
		{name: "no exp", token: rsaKey.Sign(t, claims("alice").With("exp", nil))},
		{name: "wrong issuer", token: rsaKey.Sign(t, claims("alice").With("iss", "https://evil.example.test/"))},
		{name: "no issuer", token: rsaKey.Sign(t, claims("alice").With("iss", nil))},
		{name: "wrong audience", token: rsaKey.Sign(t, claims("alice").With("aud", "billing"))},
		{name: "no audience", token: rsaKey.Sign(t, claims("alice").With("aud", nil))},
		{name: "no sub", token: rsaKey.Sign(t, claims("alice").With("sub", nil))},
		{name: "empty sub", token: rsaKey.Sign(t, claims(""))},
		{name: "scope not a string", token: rsaKey.Sign(t, claims("alice").With("scope", []string{"cart:any"}))},
		{name: "unknown critical header", token: rsaKey.SignWithHeaders(t, claims("alice"), map[string]any{"crit": []string{"x-must"}, "x-must": true})},
		{name: "no kid", token: rsaKey.SignWithHeaders(t, claims("alice"), map[string]any{"kid": nil})},
		{name: "unknown kid", token: stranger.Sign(t, claims("alice"))},
		{name: "key not in the set under a known kid", token: impostor.Sign(t, claims("alice"))},
		{name: "algorithm not the key's", token: confused.Sign(t, claims("alice"))},
		{name: "alg none", token: authtest.UnsignedToken(t, "rsa-1", claims("alice"))},
		{name: "HS256 keyed with the RSA public key", token: authtest.HS256WithPublicKey(t, rsaKey, claims("alice"))},
		{name: "HS256 keyed with the EC public key", token: authtest.HS256WithPublicKey(t, ecKey, claims("alice"))},
		{name: "HS256 with any secret", token: authtest.HS256(t, []byte("secret"), "rsa-1", claims("alice"))},
		{name: "tampered payload", token: authtest.Tamper(t, rsaKey.Sign(t, claims("alice")), func(c authtest.Claims) authtest.Claims {
			return c.With("sub", "bob")
		})},
		{name: "tampered scope", token: authtest.Tamper(t, edKey.Sign(t, claims("alice")), func(c authtest.Claims) authtest.Claims {
			return c.With("scope", auth.ScopeAdmin)
		})},
		{name: "signature stripped", token: strings.TrimRight(rsaKey.Sign(t, claims("alice")), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")},
		{name: "garbage", token: "not.a.token"},
		{name: "empty", token: ""},
		{name: "too long", token: rsaKey.Sign(t, claims("alice").With("pad", strings.Repeat("x", 20<<10)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token)
			if tt.wantSub == "" {
				if err == nil {
					t.Fatalf("Verify accepted the token as %+v, want rejection", p)
				}
				if !errors.Is(err, auth.ErrInvalidToken) {
					t.Errorf("error %v does not wrap ErrInvalidToken", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Subject != tt.wantSub {
				t.Errorf("Subject = %q, want %q", p.Subject, tt.wantSub)
			}
			if !tt.wantExp.IsZero() && !p.ExpiresAt.Equal(tt.wantExp) {
				t.Errorf("ExpiresAt = %v, want %v", p.ExpiresAt, tt.wantExp)
			}
			if tt.wantScope != nil && strings.Join(p.Scopes, "|") != strings.Join(tt.wantScope, "|") {
				t.Errorf("Scopes = %q, want %q", p.Scopes, tt.wantScope)
			}
		})
	}
}

func TestVerifierUnknownKidAfterRefresh(t *testing.T) {
	known := authtest.NewECKey(t, "known")
	stranger := authtest.NewECKey(t, "stranger")
	clock := authtest.NewClock(t0)
	v, _ := newFileVerifier(t, clock, known)

	clock.Advance(time.Minute) // past MinRefreshInterval: the unknown kid re-reads the file
	c := authtest.NewClaims(testIssuer, testAudience, "alice", clock.Now(), time.Minute)
	if _, err := v.Verify(context.Background(), stranger.Sign(t, c)); err == nil {
		t.Fatal("token of a key not in the set verified after a refresh")
	}
	if _, err := v.Verify(context.Background(), known.Sign(t, c)); err != nil {
		t.Fatalf("known key after the refresh: %v", err)
	}
}

func TestVerifierFileRotation(t *testing.T) {
	oldKey := authtest.NewRSAKey(t, "2026-11")
	newKey := authtest.NewEd25519Key(t, "2026-12")
	clock := authtest.NewClock(t0)
	v, file := newFileVerifier(t, clock, oldKey)
	ctx := context.Background()

	steps := []struct {
		name    string
		publish []*authtest.Key // nil: leave the file alone
		advance time.Duration
		key     *authtest.Key
		wantOK  bool
	}{
		{name: "old key before rotation", key: oldKey, wantOK: true},
		{name: "new key not yet published", key: newKey, wantOK: false},
		// The file changed: re-read at once, no restart, no wait.
		{name: "new key once published", publish: []*authtest.Key{oldKey, newKey}, key: newKey, wantOK: true},
		{name: "old key still published", key: oldKey, wantOK: true},
		{name: "old key withdrawn", publish: []*authtest.Key{newKey}, advance: time.Second, key: oldKey, wantOK: false},
		{name: "new key after withdrawal", key: newKey, wantOK: true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.publish != nil {
				file.Rotate(s.publish...)
			}
			clock.Advance(s.advance)
			tok := s.key.Sign(t, authtest.NewClaims(testIssuer, testAudience, "alice", clock.Now(), time.Minute))
			_, err := v.Verify(ctx, tok)
			if s.wantOK && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !s.wantOK && err == nil {
				t.Fatal("Verify accepted the token")
			}
		})
	}

	t.Run("broken file keeps the keys", func(t *testing.T) {
		authtest.WriteFile(t, file.Path, []byte("{not json"))
		tok := newKey.Sign(t, authtest.NewClaims(testIssuer, testAudience, "alice", clock.Now(), time.Minute))
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("Verify after a broken write: %v", err)
		}
	})
}

func TestVerifierHTTPS(t *testing.T) {
	k1 := authtest.NewRSAKey(t, "k1")
	k2 := authtest.NewECKey(t, "k2")
	k3 := authtest.NewEd25519Key(t, "k3")
	srv := authtest.ServeJWKS(t, k1)
	clock := authtest.NewClock(t0)
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		JWKS:               srv.URL(),
		Issuer:             testIssuer,
		Audience:           testAudience,
		MinRefreshInterval: 5 * time.Second,
		MaxKeyAge:          time.Hour,
		HTTPClient:         srv.Client(),
		Now:                clock.Now,
		Logger:             testLogger(t),
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	ctx := context.Background()

	steps := []struct {
		name        string
		do          func()
		key         *authtest.Key
		kid         string // overrides key.ID in the header when set
		cancelled   bool   // the caller's context is already done
		wantOK      bool
		wantFetches int
	}{
		{name: "first fetch at start", key: k1, wantOK: true, wantFetches: 1},
		{name: "cached", key: k1, wantOK: true, wantFetches: 1},
		{name: "rotated, unknown kid too soon after the last fetch", do: func() { srv.Rotate(k1, k2) }, key: k2, wantFetches: 1},
		{name: "unknown kid refreshes once the interval passed", do: func() { clock.Advance(6 * time.Second) }, key: k2, wantOK: true, wantFetches: 2},
		{name: "new key cached", key: k2, wantOK: true, wantFetches: 2},
		{name: "random kid refreshes once", do: func() { clock.Advance(6 * time.Second) }, key: k2, kid: "random-1", wantFetches: 3},
		{name: "random kids within the interval do not fetch", key: k2, kid: "random-2", wantFetches: 3},
		{name: "more random kids", key: k2, kid: "random-3", wantFetches: 3},
		{name: "a caller that gave up does not spoil the refresh", do: func() { srv.Rotate(k1, k2, k3); clock.Advance(6 * time.Second) },
			key: k3, cancelled: true, wantOK: true, wantFetches: 4},
		{name: "keys older than MaxKeyAge are fetched again", do: func() { clock.Advance(time.Hour) }, key: k1, wantOK: true, wantFetches: 5},
		{name: "IdP down: keep the keys", do: func() { srv.Fail(http.StatusServiceUnavailable); clock.Advance(2 * time.Hour) }, key: k2, wantOK: true, wantFetches: 6},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.do != nil {
				s.do()
			}
			c := authtest.NewClaims(testIssuer, testAudience, "alice", clock.Now(), time.Minute)
			var tok string
			if s.kid != "" {
				tok = s.key.SignWithHeaders(t, c, map[string]any{"kid": s.kid})
			} else {
				tok = s.key.Sign(t, c)
			}
			ctx := ctx
			if s.cancelled {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				cancel()
			}
			_, err := v.Verify(ctx, tok)
			if s.wantOK && err != nil {
				t.Errorf("Verify: %v", err)
			}
			if !s.wantOK && err == nil {
				t.Error("Verify accepted the token")
			}
			if got := srv.Fetches(); got != s.wantFetches {
				t.Errorf("fetches = %d, want %d", got, s.wantFetches)
			}
		})
	}
}

func TestNewVerifierErrors(t *testing.T) {
	dir := t.TempDir()
	symmetricOnly := filepath.Join(dir, "oct.json")
	if err := os.WriteFile(symmetricOnly, []byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// An https JWKS that redirects to plain http, which serves valid keys.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write(authtest.JWKS(t, authtest.NewECKey(t, "k")))
	}))
	t.Cleanup(plain.Close)
	redirecting := httptest.NewTLSServer(http.RedirectHandler(plain.URL, http.StatusFound))
	t.Cleanup(redirecting.Close)

	tests := []struct {
		name    string
		cfg     auth.Config
		wantErr []string // substrings, all of them
	}{
		{name: "redirect to http", cfg: auth.Config{JWKS: redirecting.URL, HTTPClient: redirecting.Client(), Issuer: "i", Audience: "a"},
			wantErr: []string{"not https"}},
		{name: "empty", cfg: auth.Config{}, wantErr: []string{"JWKS source is required", "issuer is required", "audience is required"}},
		{name: "plain http", cfg: auth.Config{JWKS: "http://idp.example.test/jwks", Issuer: "i", Audience: "a"}, wantErr: []string{"only https"}},
		{name: "negative leeway", cfg: auth.Config{JWKS: "x", Issuer: "i", Audience: "a", Leeway: -time.Second}, wantErr: []string{"leeway"}},
		{name: "missing file", cfg: auth.Config{JWKS: filepath.Join(dir, "nope.json"), Issuer: "i", Audience: "a"}, wantErr: []string{"load JWKS"}},
		{name: "no usable key", cfg: auth.Config{JWKS: symmetricOnly, Issuer: "i", Audience: "a"}, wantErr: []string{"no usable signing key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.NewVerifier(context.Background(), tt.cfg)
			if err == nil {
				t.Fatal("NewVerifier succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
