package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/dev/devauth"
)

// TestProgram builds the command, runs it twice in a temporary data
// directory, and verifies both tokens against the JWKS it created, as a
// service configured for the local stack would.
func TestProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the program")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "carttoken")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := filepath.Join(tmp, "data")

	tests := []struct {
		name       string
		args       []string
		wantSub    string
		wantScopes []string
	}{
		{name: "end user", args: []string{"-sub", "alice"}, wantSub: "alice"},
		{name: "service and admin", args: []string{"-sub", "ops", "-scope", "cart:any cart:admin", "-ttl", "5m"},
			wantSub: "ops", wantScopes: []string{auth.ScopeAny, auth.ScopeAdmin}},
	}
	var v *auth.Verifier
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, append(tt.args, "-data-dir", dataDir)...)
			cmd.Dir = tmp
			cmd.Env = append(os.Environ(), "CART_TOKEN_SUB=", "CART_TOKEN_SCOPE=", "CART_DATA_DIR=", "CART_TOKEN_TTL=")
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("carttoken: %v\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			if len(lines) != 1 || strings.Count(lines[0], ".") != 2 {
				t.Fatalf("stdout is not just a token: %q", stdout.String())
			}
			if v == nil {
				// Made after the first run: the program creates the JWKS.
				var err error
				v, err = auth.NewVerifier(context.Background(), auth.Config{
					JWKS:     filepath.Join(dataDir, "auth", devauth.JWKSFileName),
					Issuer:   devauth.Issuer,
					Audience: devauth.Audience,
				})
				if err != nil {
					t.Fatalf("NewVerifier: %v", err)
				}
			}
			p, err := v.Verify(context.Background(), lines[0])
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Subject != tt.wantSub || !slices.Equal(p.Scopes, tt.wantScopes) {
				t.Errorf("principal %+v, want %q %q", p, tt.wantSub, tt.wantScopes)
			}
		})
	}
	info, err := os.Stat(filepath.Join(dataDir, "auth", devauth.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr []string
	}{
		{name: "defaults", args: []string{"-sub", "alice"},
			want: config{Subject: "alice", DataDir: ".data", TTL: time.Hour}},
		{name: "env fallbacks", env: map[string]string{"CART_TOKEN_SUB": "bob", "CART_TOKEN_SCOPE": "cart:any", "CART_DATA_DIR": "/d", "CART_TOKEN_TTL": "2m"},
			want: config{Subject: "bob", Scope: "cart:any", DataDir: "/d", TTL: 2 * time.Minute}},
		{name: "flags beat env", args: []string{"-sub", "carol"}, env: map[string]string{"CART_TOKEN_SUB": "bob"},
			want: config{Subject: "carol", DataDir: ".data", TTL: time.Hour}},
		{name: "every problem at once", args: []string{"-ttl", "0s", "-data-dir", ""},
			wantErr: []string{"-sub is required", "-ttl", "-data-dir is required"}},
		{name: "bad env duration", args: []string{"-sub", "a"}, env: map[string]string{"CART_TOKEN_TTL": "soon"},
			wantErr: []string{"CART_TOKEN_TTL"}},
		{name: "stray argument", args: []string{"-sub", "a", "extra"}, wantErr: []string{"unexpected arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, &bytes.Buffer{})
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("parseConfig = %+v, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseConfig = %+v, want %+v", got, tt.want)
			}
		})
	}
}
