// Package devauth is the local identity provider of the dev stack: one ES256
// signing key and the JWKS publishing it, kept under a data directory, and
// tokens minted with them. Services started with
//
//	--auth-jwks <dir>/jwks.json --auth-issuer cart-dev --auth-audience cart
//
// (see Minter.VerifierConfig) then authenticate callers for real, so local
// runs exercise the same code path as production instead of
// --insecure-no-auth. The key is a development secret: it never leaves the
// machine and grants nothing anywhere else, since no other deployment trusts
// this issuer.
package devauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/acme/cart/internal/auth"
)

// What the dev tokens say and where the files live under the directory.
const (
	// Issuer is the `iss` of dev tokens; configure the services with it.
	Issuer = "cart-dev"
	// Audience is the `aud` of dev tokens; configure the services with it.
	Audience = "cart"
	// KeyFileName holds the private key (PKCS#8 PEM, mode 0600).
	KeyFileName = "signing-key.pem"
	// JWKSFileName holds the public key set the services read.
	JWKSFileName = "jwks.json"
)

// Minter signs dev tokens with the key of one directory.
type Minter struct {
	dir string
	key jwk.Key // private, with kid and alg
	kid string
	// now is the clock of iat/exp; tests replace it.
	now func() time.Time
}

// Ensure returns the Minter of dir, creating dir, the signing key and the
// JWKS on first use and reusing them afterwards, so tokens minted earlier
// stay valid across runs. Concurrent first calls (two terminals) agree on
// one key. A jwks.json that does not match the key is rewritten.
func Ensure(dir string) (*Minter, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devauth: %w", err)
	}
	priv, err := loadOrCreateKey(filepath.Join(dir, KeyFileName))
	if err != nil {
		return nil, fmt.Errorf("devauth: signing key: %w", err)
	}
	key, err := jwk.Import(priv)
	if err != nil {
		return nil, fmt.Errorf("devauth: %w", err)
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devauth: thumbprint: %w", err)
	}
	// The RFC 7638 thumbprint names the key by its content: a new key
	// always gets a new kid.
	kid := base64.RawURLEncoding.EncodeToString(tp)
	for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: jwa.ES256(), jwk.KeyUsageKey: "sig"} {
		if err := key.Set(name, v); err != nil {
			return nil, fmt.Errorf("devauth: %w", err)
		}
	}
	m := &Minter{dir: dir, key: key, kid: kid, now: time.Now}
	if err := m.writeJWKS(); err != nil {
		return nil, fmt.Errorf("devauth: %w", err)
	}
	return m, nil
}

func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	if k, err := readKey(path); !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".signing-key-*") // mode 0600
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	err = pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	// Link, unlike rename, fails if another process got there first; then
	// its key is the key.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(path)
		}
		return nil, err
	}
	return k, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not a P-256 key", path)
	}
	return ec, nil
}

// writeJWKS publishes the public key, atomically, only when the file differs:
// rewriting it on every call would make running services reload for nothing.
func (m *Minter) writeJWKS() error {
	pub, err := m.key.PublicKey()
	if err != nil {
		return err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return err
	}
	doc, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return err
	}
	doc = append(doc, '\n')
	path := m.JWKSPath()
	if cur, err := os.ReadFile(path); err == nil && string(cur) == string(doc) {
		return nil
	}
	tmp, err := os.CreateTemp(m.dir, ".jwks-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(doc)
	if err == nil {
		err = tmp.Chmod(0o644) // public keys: readable by a service under another user
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// JWKSPath is the JWKS file to give the services (auth.Config.JWKS).
func (m *Minter) JWKSPath() string { return filepath.Join(m.dir, JWKSFileName) }

// KeyID is the kid of the signing key, as published in the JWKS.
func (m *Minter) KeyID() string { return m.kid }

// VerifierConfig is the auth.Config that accepts this Minter's tokens, for
// the local stack and end-to-end tests.
func (m *Minter) VerifierConfig() auth.Config {
	return auth.Config{JWKS: m.JWKSPath(), Issuer: Issuer, Audience: Audience}
}

// Mint signs a token for sub with scopes (e.g. auth.ScopeAny), valid for
// ttl from now.
func (m *Minter) Mint(sub string, scopes []string, ttl time.Duration) (string, error) {
	if strings.TrimSpace(sub) == "" {
		return "", errors.New("devauth: subject is required")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("devauth: ttl %v must be positive", ttl)
	}
	now := m.now().Truncate(time.Second)
	b := jwt.NewBuilder().
		Issuer(Issuer).
		Audience([]string{Audience}).
		Subject(sub).
		IssuedAt(now).
		NotBefore(now).
		Expiration(now.Add(ttl)).
		JwtID(uuid.NewString())
	var words []string
	for _, s := range scopes {
		words = append(words, strings.Fields(s)...)
	}
	if len(words) > 0 {
		b = b.Claim("scope", strings.Join(words, " "))
	}
	tok, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("devauth: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), m.key))
	if err != nil {
		return "", fmt.Errorf("devauth: sign: %w", err)
	}
	return string(signed), nil
}
