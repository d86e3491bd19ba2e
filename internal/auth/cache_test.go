package auth_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/testing/authtest"
)

// Given a token verified once (and so remembered), when the same token
// comes again, then the answer is what a full verification would give
// now: good while its lifetime and its key last, refused the moment
// either ends (expiry past the leeway, the key withdrawn from the file or
// from the IdP's JWKS).
func TestVerifiedTokensAreForgottenWithTheirKeyOrLifetime(t *testing.T) {
	oldKey := authtest.NewRSAKey(t, "old")
	newKey := authtest.NewECKey(t, "new")
	clock := authtest.NewClock(t0)
	v, file := newFileVerifier(t, clock, oldKey, newKey)
	ctx := context.Background()
	verify := func(t *testing.T, tok string, wantOK bool) {
		t.Helper()
		for range 3 { // the first call checks, the next ones are remembered
			p, err := v.Verify(ctx, tok)
			if wantOK && (err != nil || p.Subject != "alice") {
				t.Fatalf("Verify = %+v, %v; want alice", p, err)
			}
			if !wantOK && err == nil {
				t.Fatal("Verify accepted the token")
			}
		}
	}
	short := oldKey.Sign(t, authtest.NewClaims(testIssuer, testAudience, "alice", clock.Now(), time.Minute))
	verify(t, short, true)
	clock.Advance(time.Minute + auth.DefaultLeeway - time.Second)
	verify(t, short, true) // within the leeway, as a first verification would
	clock.Advance(2 * time.Second)
	verify(t, short, false)

	long := oldKey.Sign(t, authtest.NewClaims(testIssuer, testAudience, "alice", clock.Now(), time.Hour))
	other := newKey.Sign(t, authtest.NewClaims(testIssuer, testAudience, "alice", clock.Now(), time.Hour))
	verify(t, long, true)
	verify(t, other, true)
	file.Rotate(newKey) // the old key withdrawn
	verify(t, long, false)
	verify(t, other, true)

	t.Run("https", func(t *testing.T) {
		srv := authtest.ServeJWKS(t, oldKey, newKey)
		v, err := auth.NewVerifier(ctx, auth.Config{JWKS: srv.URL(), Issuer: testIssuer, Audience: testAudience,
			MaxKeyAge: time.Hour, HTTPClient: srv.Client(), Now: clock.Now, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		tok := oldKey.Sign(t, authtest.NewClaims(testIssuer, testAudience, "alice", clock.Now(), 3*time.Hour))
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		srv.Rotate(newKey)
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("before the keys' age is up: %v (the IdP's keys are cached for MaxKeyAge)", err)
		}
		clock.Advance(time.Hour)
		if _, err := v.Verify(ctx, tok); err == nil {
			t.Fatal("a remembered token outlived its key's withdrawal from the IdP's JWKS")
		}
	})
}

// Given a verifier with a small cache, when more distinct good tokens come
// than it holds, then each is still verified right and the tokens seen
// first are still accepted after being forgotten.
func TestVerifiedCacheIsBounded(t *testing.T) {
	key := authtest.NewEd25519Key(t, "k")
	clock := authtest.NewClock(t0)
	f := authtest.NewJWKSFile(t, key)
	v, err := auth.NewVerifier(context.Background(), auth.Config{JWKS: f.Path, Issuer: testIssuer, Audience: testAudience,
		Now: clock.Now, Logger: testLogger(t), VerifiedCacheSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	var toks []string
	for i := range 50 {
		c := authtest.NewClaims(testIssuer, testAudience, "user", clock.Now(), time.Hour).With("jti", fmt.Sprint(i))
		toks = append(toks, key.Sign(t, c))
	}
	for round := range 2 {
		for i, tok := range toks {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("round %d, token %d: %v", round, i, err)
			}
		}
	}
	if n := auth.VerifiedCacheLen(v); n > 8 {
		t.Fatalf("cache holds %d tokens, bound is 8", n)
	}
}

// BenchmarkVerify shows what the cache saves a caller that reuses its
// token, as apps and services do for its whole lifetime.
func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			key := authtest.NewECKey(b, "k")
			f := authtest.NewJWKSFile(b, key)
			v, err := auth.NewVerifier(context.Background(), auth.Config{JWKS: f.Path, Issuer: testIssuer, Audience: testAudience, VerifiedCacheSize: bc.size})
			if err != nil {
				b.Fatal(err)
			}
			tok := key.Sign(b, authtest.NewClaims(testIssuer, testAudience, "alice", time.Now(), time.Hour))
			for b.Loop() {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
