// Package authtest is the test kit of internal/auth: keys of every accepted
// type, JWKS documents as files (rotated in place) or served over TLS, signed
// tokens with any claims and headers, and the classic forgeries (alg none,
// HS256 keyed with the public key, a tampered payload) that a verifier must
// refuse. It is for tests only: keys are generated per test and never stored.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Key is a signing key with the kid and JWS algorithm it is published under.
type Key struct {
	// ID is the kid, in the JWKS and in tokens' headers.
	ID string
	// Alg is "RS256", "ES256" or "EdDSA".
	Alg string
	// Private signs tokens.
	Private crypto.Signer
}

// NewRSAKey returns a fresh 2048-bit RS256 key named kid.
func NewRSAKey(t testing.TB, kid string) *Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("authtest: RSA key: %v", err)
	}
	return &Key{ID: kid, Alg: "RS256", Private: k}
}

// NewECKey returns a fresh P-256 ES256 key named kid.
func NewECKey(t testing.TB, kid string) *Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("authtest: EC key: %v", err)
	}
	return &Key{ID: kid, Alg: "ES256", Private: k}
}

// NewEd25519Key returns a fresh Ed25519 (EdDSA) key named kid.
func NewEd25519Key(t testing.TB, kid string) *Key {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("authtest: Ed25519 key: %v", err)
	}
	return &Key{ID: kid, Alg: "EdDSA", Private: k}
}

// Public is the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

// PublicJWK is the public key as published in a JWKS: kid, alg and use=sig.
func (k *Key) PublicJWK(t testing.TB) jwk.Key {
	t.Helper()
	j, err := jwk.Import(k.Public())
	if err != nil {
		t.Fatalf("authtest: import key %s: %v", k.ID, err)
	}
	alg, ok := jwa.LookupSignatureAlgorithm(k.Alg)
	if !ok {
		t.Fatalf("authtest: unknown algorithm %q", k.Alg)
	}
	for name, v := range map[string]any{jwk.KeyIDKey: k.ID, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: "sig"} {
		if err := j.Set(name, v); err != nil {
			t.Fatalf("authtest: set %s: %v", name, err)
		}
	}
	return j
}

// JWKS is the JSON Web Key Set document publishing the public halves of keys.
func JWKS(t testing.TB, keys ...*Key) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k.PublicJWK(t)); err != nil {
			t.Fatalf("authtest: add key %s: %v", k.ID, err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatalf("authtest: marshal JWKS: %v", err)
	}
	return b
}

// WriteJWKS writes the JWKS of keys to path atomically (temporary file and
// rename), as a deployment replacing the file would.
func WriteJWKS(t testing.TB, path string, keys ...*Key) {
	t.Helper()
	writeAtomic(t, path, JWKS(t, keys...))
}

// WriteFile writes raw bytes to path atomically, for broken or hostile JWKS
// documents.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	writeAtomic(t, path, data)
}

func writeAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".jwks-*")
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		t.Fatalf("authtest: write %s: %v", path, err)
	}
}

// JWKSFile is a JWKS file in a test's temporary directory.
type JWKSFile struct {
	t    testing.TB
	Path string
}

// NewJWKSFile writes the JWKS of keys to a fresh file under t.TempDir().
func NewJWKSFile(t testing.TB, keys ...*Key) *JWKSFile {
	t.Helper()
	f := &JWKSFile{t: t, Path: filepath.Join(t.TempDir(), "jwks.json")}
	f.Rotate(keys...)
	return f
}

// Rotate replaces the published keys, as an IdP's key rotation does.
func (f *JWKSFile) Rotate(keys ...*Key) {
	f.t.Helper()
	WriteJWKS(f.t, f.Path, keys...)
}

// JWKSServer serves a JWKS over TLS (httptest) and counts the fetches, to
// test caching and refresh.
type JWKSServer struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	doc     []byte
	status  int
	fetches atomic.Int64
}

// JWKSPath is the path the JWKSServer serves the set on.
const JWKSPath = "/.well-known/jwks.json"

// ServeJWKS starts a TLS server publishing keys; it is closed at cleanup.
func ServeJWKS(t testing.TB, keys ...*Key) *JWKSServer {
	t.Helper()
	s := &JWKSServer{t: t, doc: JWKS(t, keys...), status: http.StatusOK}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *JWKSServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != JWKSPath {
		http.NotFound(w, r)
		return
	}
	s.fetches.Add(1)
	s.mu.Lock()
	doc, code := s.doc, s.status
	s.mu.Unlock()
	if code != http.StatusOK {
		http.Error(w, http.StatusText(code), code)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Write(doc)
}

// URL is the https URL of the JWKS.
func (s *JWKSServer) URL() string { return s.srv.URL + JWKSPath }

// Client trusts the server's test certificate.
func (s *JWKSServer) Client() *http.Client { return s.srv.Client() }

// Rotate replaces the published keys.
func (s *JWKSServer) Rotate(keys ...*Key) {
	s.t.Helper()
	doc := JWKS(s.t, keys...)
	s.mu.Lock()
	s.doc, s.status = doc, http.StatusOK
	s.mu.Unlock()
}

// Fail makes the server answer status (e.g. 503) until the next Rotate.
func (s *JWKSServer) Fail(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

// Fetches is how many times the JWKS was requested.
func (s *JWKSServer) Fetches() int { return int(s.fetches.Load()) }

// Claims are a token's payload.
type Claims map[string]any

// NewClaims returns the claims of a token the verifier under test should
// accept: iss, aud, sub, iat and exp = now+ttl.
func NewClaims(issuer, audience, subject string, now time.Time, ttl time.Duration) Claims {
	return Claims{
		"iss": issuer,
		"aud": audience,
		"sub": subject,
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
}

// With returns a copy of c with name set to v, or removed when v is nil.
func (c Claims) With(name string, v any) Claims {
	out := make(Claims, len(c)+1)
	for k, x := range c {
		out[k] = x
	}
	if v == nil {
		delete(out, name)
	} else {
		out[name] = v
	}
	return out
}

// Sign returns a compact JWS of claims signed by k, with kid and alg in
// the header.
func (k *Key) Sign(t testing.TB, claims Claims) string {
	t.Helper()
	return k.SignWithHeaders(t, claims, nil)
}

// SignWithHeaders is Sign with extra or replaced protected headers (typ,
// kid; a nil value removes kid). The signature algorithm is always k.Alg.
func (k *Key) SignWithHeaders(t testing.TB, claims Claims, headers map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("authtest: marshal claims: %v", err)
	}
	h := jws.NewHeaders()
	set := func(name string, v any) {
		if err := h.Set(name, v); err != nil {
			t.Fatalf("authtest: header %s: %v", name, err)
		}
	}
	set("typ", "JWT")
	set(jws.KeyIDKey, k.ID)
	for name, v := range headers {
		if v == nil {
			if err := h.Remove(name); err != nil {
				t.Fatalf("authtest: remove header %s: %v", name, err)
			}
			continue
		}
		set(name, v)
	}
	alg, ok := jwa.LookupSignatureAlgorithm(k.Alg)
	if !ok {
		t.Fatalf("authtest: unknown algorithm %q", k.Alg)
	}
	tok, err := jws.Sign(payload, jws.WithKey(alg, k.Private, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatalf("authtest: sign: %v", err)
	}
	return string(tok)
}

// The forgeries below are assembled by hand on purpose: a JOSE library
// refuses to produce them, and a verifier must refuse to accept them.

var b64 = base64.RawURLEncoding

func segment(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("authtest: marshal: %v", err)
	}
	return b64.EncodeToString(b)
}

// UnsignedToken is an `alg: none` token with an empty signature, claiming
// to come from kid.
func UnsignedToken(t testing.TB, kid string, claims Claims) string {
	t.Helper()
	h := map[string]any{"alg": "none", "typ": "JWT"}
	if kid != "" {
		h["kid"] = kid
	}
	return segment(t, h) + "." + segment(t, claims) + "."
}

// HS256WithPublicKey is the algorithm-confusion forgery: an HS256 token whose
// HMAC secret is k's public key as PEM (what a naive verifier would use as
// "the key" for kid). k should be an RSA key, the classic case.
func HS256WithPublicKey(t testing.TB, k *Key, claims Claims) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatalf("authtest: marshal public key: %v", err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return HS256(t, secret, k.ID, claims)
}

// HS256 is a token MACed with secret under kid, for "no HMAC at all" tests.
func HS256(t testing.TB, secret []byte, kid string, claims Claims) string {
	t.Helper()
	signingInput := segment(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + segment(t, claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signingInput))
	return signingInput + "." + b64.EncodeToString(mac.Sum(nil))
}

// Tamper returns token with its payload replaced by edit(claims), keeping the
// original header and signature, as an attacker raising their own privileges
// would.
func Tamper(t testing.TB, token string, edit func(Claims) Claims) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("authtest: not a compact JWS: %d parts", len(parts))
	}
	raw, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("authtest: payload: %v", err)
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("authtest: payload: %v", err)
	}
	parts[1] = segment(t, edit(c))
	return strings.Join(parts, ".")
}

// Clock is a settable clock for token lifetimes and refresh intervals; safe
// for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now is the clock's time; pass the method value as Config.Now.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// String helps failure messages.
func (c *Clock) String() string { return fmt.Sprint(c.Now()) }
