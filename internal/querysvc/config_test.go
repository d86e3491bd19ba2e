package querysvc

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acme/cart/internal/api/rpc"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{name: "defaults are valid once auth is decided", cfg: Config{ServerConfig: rpc.ServerConfig{Security: rpc.SecurityConfig{InsecureNoAuth: true}}}.WithDefaults()},
		{name: "auth is never off by default", cfg: Config{}.WithDefaults(), want: []string{"auth-jwks: required"}},
		{
			name: "every problem at once",
			cfg: Config{
				ServerConfig: rpc.ServerConfig{Listen: "nope"},
				AdminListen:  "also-nope",
				ESDBURL:      "http://x",
				MongoURI:     "postgres://u:secret@h/",
				MongoDB:      "a.b",
				MaxWait:      -time.Second,
			}.WithDefaults(),
			want: []string{"listen \"nope\"", "admin-listen", "esdb", "mongo-uri \"postgres://u:xxxxx@h/\"", "mongo-db", "max-wait"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil, want errors")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, missing %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Validate leaks a password: %q", err)
			}
		})
	}
}

func TestConfigLogValueMasksPasswords(t *testing.T) {
	t.Parallel()
	cfg := Config{
		ESDBURL:  "esdb://admin:changeit@db:2113?tls=true",
		MongoURI: "mongodb://reader:hunter2@m1:27017,m2:27017/?replicaSet=rs0",
	}.WithDefaults()
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", cfg)
	out := b.String()
	for _, secret := range []string{"changeit", "hunter2"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line leaks %q: %s", secret, out)
		}
	}
	for _, keep := range []string{"admin:xxxxx@db:2113", "reader:xxxxx@m1:27017,m2:27017", "listen=127.0.0.1:50052"} {
		if !strings.Contains(out, keep) {
			t.Errorf("log line lacks %q: %s", keep, out)
		}
	}
}

func TestRedactURI(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"mongodb://127.0.0.1:27017/":          "mongodb://127.0.0.1:27017/",
		"mongodb://user@h/":                   "mongodb://user@h/",
		"mongodb://user:p@ss@h/db?x=y@z":      "mongodb://user:xxxxx@h/db?x=y@z",
		"esdb+discover://a:b@h1,h2?tls=false": "esdb+discover://a:xxxxx@h1,h2?tls=false",
		"not a uri":                           "not a uri",
	}
	for in, want := range tests {
		if got := redactURI(in); got != want {
			t.Errorf("redactURI(%q) = %q, want %q", in, got, want)
		}
	}
}
