package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// maxJWKSBytes bounds what we read from a JWKS source; real sets are a few KB.
const maxJWKSBytes = 1 << 20

// minRSABits refuses toy RSA keys that a misconfigured IdP might publish.
const minRSABits = 2048

// publicKey is one usable verification key of the set.
type publicKey struct {
	// raw is *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey.
	raw any
	// alg is the JWS algorithm the key verifies; a key of the set serves one
	// algorithm only, so a token cannot pick another one for it.
	alg string
}

// keySet is one loaded version of the JWKS, replaced whole on refresh.
type keySet struct {
	keys     map[string]publicKey
	loadedAt time.Time
	// version identifies the source content (file identity and mtime), to
	// notice changes cheaply; empty for URLs.
	version fileVersion
}

// source is where the JWKS bytes come from.
type source interface {
	// read returns the JWKS document and, for files, its version.
	read(ctx context.Context) ([]byte, fileVersion, error)
	// changed reports cheaply whether the set loaded as ks is out of date.
	changed(ks *keySet, now time.Time) bool
	String() string
}

// fileVersion is what a stat tells about a file, enough to notice an in-place
// rewrite or a rename over it.
type fileVersion struct {
	info os.FileInfo
}

func (v fileVersion) same(o fileVersion) bool {
	if v.info == nil || o.info == nil {
		return v.info == nil && o.info == nil
	}
	return os.SameFile(v.info, o.info) && v.info.ModTime().Equal(o.info.ModTime()) && v.info.Size() == o.info.Size()
}

type fileSource struct{ path string }

func (s fileSource) String() string { return "file " + s.path }

func (s fileSource) read(context.Context) ([]byte, fileVersion, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fileVersion{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fileVersion{}, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxJWKSBytes+1))
	if err != nil {
		return nil, fileVersion{}, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fileVersion{}, fmt.Errorf("larger than %d bytes", maxJWKSBytes)
	}
	return b, fileVersion{info: info}, nil
}

// changed stats the file on every call: a syscall is cheap next to a
// signature check, and a withdrawn key stops working at once.
func (s fileSource) changed(ks *keySet, _ time.Time) bool {
	info, err := os.Stat(s.path)
	if err != nil {
		// Gone or unreadable: keep the keys we have rather than lock
		// everyone out during a non-atomic replace; the read will log.
		return false
	}
	return !ks.version.same(fileVersion{info: info})
}

type urlSource struct {
	url    string
	client *http.Client
	maxAge time.Duration
}

func (s urlSource) String() string { return "url " + s.url }

func (s urlSource) read(ctx context.Context) ([]byte, fileVersion, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fileVersion{}, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fileVersion{}, err
	}
	defer resp.Body.Close()
	// A redirect to plain http would let anyone on the path swap the keys.
	if resp.Request != nil && resp.Request.URL.Scheme != "https" {
		return nil, fileVersion{}, fmt.Errorf("redirected to %s, not https", resp.Request.URL.Redacted())
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fileVersion{}, fmt.Errorf("status %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fileVersion{}, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fileVersion{}, fmt.Errorf("larger than %d bytes", maxJWKSBytes)
	}
	return b, fileVersion{}, nil
}

func (s urlSource) changed(ks *keySet, now time.Time) bool {
	return now.Sub(ks.loadedAt) >= s.maxAge
}

// parseKeySet keeps the keys of a JWKS document that can verify one of the
// accepted algorithms. Keys without a kid, for encryption, symmetric ("oct"),
// or of other types are skipped, not fatal: IdPs publish more than we use.
// It fails when nothing usable is left, since such a set locks everyone out.
func parseKeySet(doc []byte) (map[string]publicKey, []string, error) {
	set, err := jwk.Parse(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("parse JWKS: %w", err)
	}
	keys := make(map[string]publicKey, set.Len())
	var skipped []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kid, _ := k.KeyID()
		pk, err := usableKey(k)
		if err == nil && kid == "" {
			err = errors.New("no kid")
		}
		if err == nil {
			if _, dup := keys[kid]; dup {
				err = errors.New("duplicate kid")
			}
		}
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, kid, err))
			continue
		}
		keys[kid] = pk
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("JWKS has no usable signing key (%d skipped)", len(skipped))
	}
	return keys, skipped, nil
}

func usableKey(k jwk.Key) (publicKey, error) {
	if use, ok := k.KeyUsage(); ok && use != "sig" {
		return publicKey{}, fmt.Errorf("use %q", use)
	}
	raw, err := jwk.PublicRawKeyOf(k)
	if err != nil {
		return publicKey{}, fmt.Errorf("key type %s: %w", k.KeyType(), err)
	}
	var pk publicKey
	switch raw := raw.(type) {
	case *rsa.PublicKey:
		if raw.N.BitLen() < minRSABits {
			return publicKey{}, fmt.Errorf("RSA key of %d bits", raw.N.BitLen())
		}
		pk = publicKey{raw: raw, alg: algRS256}
	case *ecdsa.PublicKey:
		if raw.Curve != elliptic.P256() {
			return publicKey{}, fmt.Errorf("EC curve %s", raw.Curve.Params().Name)
		}
		pk = publicKey{raw: raw, alg: algES256}
	case ed25519.PublicKey:
		pk = publicKey{raw: raw, alg: algEdDSA}
	default:
		return publicKey{}, fmt.Errorf("key type %s not accepted", k.KeyType())
	}
	// A key that names its algorithm serves that one only.
	if alg, ok := k.Algorithm(); ok && alg.String() != pk.alg {
		return publicKey{}, fmt.Errorf("alg %q does not match key type %s", alg, k.KeyType())
	}
	return pk, nil
}
