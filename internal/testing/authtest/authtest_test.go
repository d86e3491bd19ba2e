package authtest

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// The forgeries must be real attacks, or the verifier tests that refuse them
// prove nothing.
func TestForgeries(t *testing.T) {
	k := NewRSAKey(t, "rsa-1")
	c := NewClaims("iss", "aud", "alice", time.Now(), time.Minute)

	t.Run("HS256 with the public key verifies as HMAC with the PEM", func(t *testing.T) {
		der, err := x509.MarshalPKIXPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if _, err := jws.Verify([]byte(HS256WithPublicKey(t, k, c)), jws.WithKey(jwa.HS256(), secret)); err != nil {
			t.Fatalf("a naive HMAC verifier would reject the forgery: %v", err)
		}
	})
	t.Run("alg none", func(t *testing.T) {
		msg, err := jws.ParseString(UnsignedToken(t, "rsa-1", c))
		if err != nil {
			t.Fatal(err)
		}
		alg, _ := msg.Signatures()[0].ProtectedHeaders().Algorithm()
		if alg != jwa.NoSignature() || len(msg.Signatures()[0].Signature()) != 0 {
			t.Fatalf("alg %v, signature %d bytes", alg, len(msg.Signatures()[0].Signature()))
		}
	})
	t.Run("tamper keeps the signature and changes the payload", func(t *testing.T) {
		orig := k.Sign(t, c)
		forged := Tamper(t, orig, func(c Claims) Claims { return c.With("sub", "bob") })
		o, f := strings.Split(orig, "."), strings.Split(forged, ".")
		if o[0] != f[0] || o[2] != f[2] || o[1] == f[1] {
			t.Fatal("Tamper did not replace only the payload")
		}
		if _, err := jws.Verify([]byte(orig), jws.WithKey(jwa.RS256(), k.Public())); err != nil {
			t.Fatalf("the original does not verify: %v", err)
		}
	})
}

func TestJWKSPublishesPublicKeysOnly(t *testing.T) {
	keys := []*Key{NewRSAKey(t, "r"), NewECKey(t, "e"), NewEd25519Key(t, "d")}
	set, err := jwk.Parse(JWKS(t, keys...))
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != len(keys) {
		t.Fatalf("%d keys, want %d", set.Len(), len(keys))
	}
	for i := range set.Len() {
		key, _ := set.Key(i)
		if priv, err := jwk.IsPrivateKey(key); err != nil || priv {
			b, _ := json.Marshal(key)
			t.Errorf("key %s is private (%v): %s", keys[i].ID, err, b)
		}
	}
}
