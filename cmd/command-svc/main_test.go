package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/acme/cart/internal/api/guard"
	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/commandsvc"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// required is what command-svc cannot start without: who may call (a JWKS
// with issuer and audience) and where prices come from.
var required = map[string]string{
	"CART_AUTH_JWKS": "/etc/cart/jwks.json", "CART_AUTH_ISSUER": "https://id.example", "CART_AUTH_AUDIENCE": "cart",
	"CART_CATALOG": "/etc/cart/catalog.json",
}

// withRequired adds the required settings to kv.
func withRequired(kv map[string]string) map[string]string {
	out := maps.Clone(required)
	maps.Copy(out, kv)
	return out
}

// complete is a parsed configuration with the required settings and the
// defaults of everything the test does not look at.
func complete(c commandsvc.Config) commandsvc.Config {
	c.Security = rpc.SecurityConfig{AuthJWKS: "/etc/cart/jwks.json", AuthIssuer: "https://id.example", AuthAudience: "cart", Reflection: true}
	c.CatalogFile = "/etc/cart/catalog.json"
	c.PriceTimeout = commandsvc.DefaultPriceTimeout
	c.RateLimit = guard.RateLimit{PerSecond: commandsvc.DefaultRatePerSecond, Burst: commandsvc.DefaultRateBurst}
	c.Drain, c.MaxConnectionAge, c.MaxConnectionAgeGrace = rpc.DefaultDrain, rpc.DefaultMaxConnectionAge, rpc.DefaultMaxConnectionAgeGrace
	return c
}

func TestParseConfigPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want config
	}{
		{"defaults", nil, nil, config{
			Service: complete(commandsvc.Config{ServerConfig: rpc.ServerConfig{Listen: "127.0.0.1:50051",
				ShutdownTimeout: 10 * time.Second, HealthInterval: 2 * time.Second},
				ESDBURL: "esdb://127.0.0.1:2113?tls=false", SnapshotEvery: 100}),
			Log: cli.Logging{Level: "info", Format: "json"}}},
		{"environment", nil, map[string]string{
			"CART_COMMAND_LISTEN": "0.0.0.0:6000", "CART_ESDB_URL": "esdb://es:2113?tls=false",
			"CART_SHUTDOWN_TIMEOUT": "3s", "CART_HEALTH_INTERVAL": "500ms", "CART_SNAPSHOT_EVERY": "50",
			"CART_LOG_LEVEL": "debug", "CART_LOG_FORMAT": "text"}, config{
			Service: complete(commandsvc.Config{ServerConfig: rpc.ServerConfig{Listen: "0.0.0.0:6000",
				ShutdownTimeout: 3 * time.Second, HealthInterval: 500 * time.Millisecond},
				ESDBURL: "esdb://es:2113?tls=false", SnapshotEvery: 50}),
			Log: cli.Logging{Level: "debug", Format: "text"}}},
		{"flags beat the environment", []string{"--listen", "127.0.0.1:7000", "--esdb", "esdb+discover://c:2113", "--log-level", "warn"},
			map[string]string{"CART_COMMAND_LISTEN": "0.0.0.0:6000", "CART_LOG_LEVEL": "debug"}, config{
				Service: complete(commandsvc.Config{ServerConfig: rpc.ServerConfig{Listen: "127.0.0.1:7000",
					ShutdownTimeout: 10 * time.Second, HealthInterval: 2 * time.Second},
					ESDBURL: "esdb+discover://c:2113", SnapshotEvery: 100}),
				Log: cli.Logging{Level: "warn", Format: "json"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseConfig(tt.args, env(withRequired(tt.env)), io.Discard)
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if got != tt.want {
				t.Errorf("parseConfig = %+v\nwant          %+v", got, tt.want)
			}
		})
	}
}

func TestParseConfigReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := parseConfig([]string{"--listen", "nope", "--log-format", "xml", "extra"}, env(map[string]string{
		"CART_ESDB_URL": "https://admin:s3cret@es", "CART_SHUTDOWN_TIMEOUT": "soon", "CART_SNAPSHOT_EVERY": "many", "CART_LOG_LEVEL": "loud",
	}), io.Discard)
	if err == nil {
		t.Fatal("parseConfig accepted a bad configuration")
	}
	for _, want := range []string{"listen", "esdb", "CART_SHUTDOWN_TIMEOUT", "CART_SNAPSHOT_EVERY", "log-level", "log-format", "unexpected arguments"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password:\n%v", err)
	}
}

func TestRunHelpAndBadConfig(t *testing.T) {
	t.Parallel()
	if err := run(context.Background(), []string{"-help"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run -help = %v, want flag.ErrHelp (cli.Main exits 0 on it)", err)
	}
	if err := run(context.Background(), []string{"--listen", "nope"}, env(nil), io.Discard); err == nil {
		t.Error("run with a bad listen address succeeded")
	}
}
