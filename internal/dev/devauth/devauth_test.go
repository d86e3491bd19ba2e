package devauth

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acme/cart/internal/auth"
)

func verifier(t *testing.T, m *Minter) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), m.VerifierConfig())
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func TestEnsureCreatesThenReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	m1, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	keyInfo, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if mode := keyInfo.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %v, want 0600", mode)
	}
	jwksBefore, err := os.Stat(m1.JWKSPath())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m1.Mint("alice", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	m2, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m2.KeyID() != m1.KeyID() {
		t.Errorf("second Ensure made a new key: kid %q, then %q", m1.KeyID(), m2.KeyID())
	}
	jwksAfter, err := os.Stat(m2.JWKSPath())
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(jwksBefore, jwksAfter) {
		t.Error("second Ensure rewrote an unchanged jwks.json")
	}
	if _, err := verifier(t, m2).Verify(context.Background(), tok); err != nil {
		t.Errorf("token minted before the second Ensure: %v", err)
	}
}

func TestEnsureRepairsJWKS(t *testing.T) {
	dir := t.TempDir()
	m, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.JWKSPath(), []byte(`{"keys":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := m.Mint("alice", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier(t, m).Verify(context.Background(), tok); err != nil {
		t.Errorf("after repair: %v", err)
	}
}

func TestEnsureConcurrentFirstCalls(t *testing.T) {
	dir := t.TempDir()
	kids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Go(func() {
			m, err := Ensure(dir)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = m.KeyID()
		})
	}
	wg.Wait()
	if len(slices.Compact(slices.Clone(kids))) != 1 {
		t.Errorf("concurrent Ensure made several keys: %q", kids)
	}
}

func TestEnsureRejectsBadKey(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, KeyFileName), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(dir); err == nil {
		t.Fatal("Ensure accepted a corrupt key file")
	}
}

func TestMint(t *testing.T) {
	m, err := Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, m)
	tests := []struct {
		name       string
		sub        string
		scopes     []string
		ttl        time.Duration
		issuedAgo  time.Duration
		wantErr    bool // Mint fails
		wantReject bool // Verify fails
		wantScopes []string
	}{
		{name: "user", sub: "alice", ttl: time.Hour},
		{name: "service", sub: "checkout", scopes: []string{auth.ScopeAny}, ttl: time.Hour, wantScopes: []string{auth.ScopeAny}},
		{name: "scopes as one string", sub: "ops", scopes: []string{"cart:any cart:admin"}, ttl: time.Hour,
			wantScopes: []string{auth.ScopeAny, auth.ScopeAdmin}},
		{name: "expired", sub: "alice", ttl: time.Minute, issuedAgo: time.Hour, wantReject: true},
		{name: "no subject", sub: " ", ttl: time.Hour, wantErr: true},
		{name: "no ttl", sub: "alice", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.now = func() time.Time { return time.Now().Add(-tt.issuedAgo) }
			tok, err := m.Mint(tt.sub, tt.scopes, tt.ttl)
			if tt.wantErr {
				if err == nil {
					t.Fatal("Mint succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Verify(context.Background(), tok)
			if tt.wantReject {
				if err == nil {
					t.Fatal("Verify accepted the token")
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Subject != tt.sub || !slices.Equal(p.Scopes, tt.wantScopes) {
				t.Errorf("principal %+v, want %q %q", p, tt.sub, tt.wantScopes)
			}
		})
	}
}
