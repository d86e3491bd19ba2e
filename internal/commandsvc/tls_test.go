package commandsvc_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/catalog/grpccatalog"
	"github.com/acme/cart/internal/commandsvc"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/testing/tlstest"
	"github.com/acme/cart/internal/tlsconfig"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// Given --tls-cert and --tls-key (and --tls-client-ca), when command-svc
// runs, then every listener it has, the API and the metrics listener
// alike, speaks TLS (mutual with a client CA), and a plaintext or
// certificate-less client gets nothing.
func TestEveryListenerServesTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	server := ca.Server(t, "command-svc")
	client := ca.Client(t, "checkout-svc")
	for _, mutual := range []bool{false, true} {
		name := "tls"
		if mutual {
			name = "mtls"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sec := rpc.SecurityConfig{InsecureNoAuth: true, TLSCert: server.CertFile, TLSKey: server.KeyFile}
			if mutual {
				sec.TLSClientCA = ca.CertFile
			}
			api, metrics := listen(t), listen(t)
			esdb := standin.Start(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- commandsvc.Run(ctx, commandsvc.Config{
					ServerConfig: rpc.ServerConfig{Listener: api, MetricsListener: metrics, HealthInterval: 20 * time.Millisecond, Security: sec},
					ESDBURL:      esdb.ConnectionString(), Catalog: priceOfA(t)}, nil)
			}()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})

			good := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
			if mutual {
				cert, err := tls.LoadX509KeyPair(client.CertFile, client.KeyFile)
				if err != nil {
					t.Fatal(err)
				}
				good.Certificates = []tls.Certificate{cert}
			}
			// The API: a client that trusts the CA (with its certificate
			// when mutual) is served.
			check := func(creds credentials.TransportCredentials) error {
				conn, err := grpc.NewClient(api.Addr().String(), grpc.WithTransportCredentials(creds))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer ccancel()
				_, err = healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
				return err
			}
			if err := check(credentials.NewTLS(good)); err != nil {
				t.Fatalf("TLS client: %v", err)
			}
			if err := check(insecure.NewCredentials()); err == nil {
				t.Error("a plaintext client was served")
			}
			if mutual {
				if err := check(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})); err == nil {
					t.Error("a client without a certificate was served under mTLS")
				}
			}

			// The metrics listener: HTTPS only, with the same requirements.
			url := "https://" + metrics.Addr().String() + "/metrics"
			get := func(c *http.Client, url string) (int, error) {
				resp, err := c.Get(url)
				if err != nil {
					return 0, err
				}
				defer resp.Body.Close()
				return resp.StatusCode, nil
			}
			if code, err := get(&http.Client{Transport: &http.Transport{TLSClientConfig: good}, Timeout: 5 * time.Second}, url); err != nil || code != http.StatusOK {
				t.Fatalf("GET %s over TLS = %d, %v; want 200", url, code, err)
			}
			if code, err := get(&http.Client{Timeout: 5 * time.Second}, "http://"+metrics.Addr().String()+"/metrics"); err == nil && code == http.StatusOK {
				t.Error("metrics were served over plain HTTP")
			}
			if mutual {
				noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}, Timeout: 5 * time.Second}
				if code, err := get(noCert, url); err == nil && code == http.StatusOK {
					t.Error("metrics were served to a client without a certificate under mTLS")
				}
			}
		})
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// Given a PriceService that requires client certificates, when command-svc
// reaches it with --price-service-ca, --price-service-cert and
// --price-service-key, then AddItem is priced through it; without the
// certificate the lookup fails (UNAVAILABLE) and nothing is written.
func TestPriceServiceOverMutualTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	server := ca.Server(t, "price-svc")
	client := ca.Client(t, "command-svc")
	scfg, err := tlsconfig.Server(server.CertFile, server.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	prices := grpc.NewServer(grpc.Creds(credentials.NewTLS(scfg)))
	cartv1.RegisterPriceServiceServer(prices, grpccatalog.NewServer(priceOfA(t)))
	plis := listen(t)
	go func() { _ = prices.Serve(plis) }()
	t.Cleanup(prices.Stop)
	esdb := standin.Start(t)

	run := func(t *testing.T, cert, key string) (cartv1.CartCommandServiceClient, *grpc.ClientConn) {
		api := listen(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- commandsvc.Run(ctx, commandsvc.Config{
				ServerConfig: rpc.ServerConfig{Listener: api, HealthInterval: 20 * time.Millisecond, Security: rpc.SecurityConfig{InsecureNoAuth: true}},
				ESDBURL:      esdb.ConnectionString(),
				PriceService: "localhost:" + strconv.Itoa(plis.Addr().(*net.TCPAddr).Port), PriceServiceCA: ca.CertFile,
				PriceServiceCert: cert, PriceServiceKey: key}, nil)
		}()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		conn, err := grpc.NewClient(api.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		waitHealth(t, conn, healthpb.HealthCheckResponse_SERVING)
		return cartv1.NewCartCommandServiceClient(conn), conn
	}
	add := func(c cartv1.CartCommandServiceClient, user string) (*cartv1.AddItemResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.AddItem(ctx, &cartv1.AddItemRequest{UserId: user, ProductId: "a", Quantity: 1})
	}

	t.Run("with the client certificate", func(t *testing.T) {
		c, _ := run(t, client.CertFile, client.KeyFile)
		if resp, err := add(c, "with-cert"); err != nil || resp.GetVersion() != 0 {
			t.Fatalf("AddItem = %v, %v; want version 0, priced by the price service", resp, err)
		}
	})
	t.Run("without it", func(t *testing.T) {
		c, _ := run(t, "", "")
		if _, err := add(c, "without-cert"); status.Code(err) != codes.Unavailable {
			t.Fatalf("AddItem = %v; want UNAVAILABLE (the price service refused the handshake)", err)
		}
		es, err := eventstore.Open(context.Background(), esdb.ConnectionString(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer es.Close()
		if evs, err := es.ReadStream(context.Background(), "without-cert", 0, 10); err != nil && !errors.Is(err, cart.ErrNotFound) || len(evs) != 0 {
			t.Fatalf("stream after the refused lookup: %d events, %v; want none", len(evs), err)
		}
	})
}

// Given the price service's TLS flags in combinations that cannot work,
// then the configuration is refused at once, naming them.
func TestPriceServiceTLSFlagsValidate(t *testing.T) {
	t.Parallel()
	base := commandsvc.Config{ServerConfig: rpc.ServerConfig{Security: rpc.SecurityConfig{InsecureNoAuth: true}}}
	tests := []struct {
		name    string
		edit    func(*commandsvc.Config)
		wantErr string // empty: valid
	}{
		{"tls", func(c *commandsvc.Config) { c.PriceService, c.PriceServiceCA = "prices:443", "ca.pem" }, ""},
		{"mtls", func(c *commandsvc.Config) {
			c.PriceService, c.PriceServiceCA, c.PriceServiceCert, c.PriceServiceKey = "prices:443", "ca.pem", "c.pem", "k.pem"
		}, ""},
		{"cert without key", func(c *commandsvc.Config) {
			c.PriceService, c.PriceServiceCA, c.PriceServiceCert = "prices:443", "ca.pem", "c.pem"
		}, "price-service-key"},
		{"cert without TLS", func(c *commandsvc.Config) {
			c.PriceService, c.PriceServiceCert, c.PriceServiceKey = "prices:443", "c.pem", "k.pem"
		}, "needs --price-service-ca"},
		{"CA without a price service", func(c *commandsvc.Config) { c.CatalogFile, c.PriceServiceCA = "catalog.json", "ca.pem" }, "need --price-service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := base
			tt.edit(&c)
			err := c.WithDefaults().Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate = %v, want valid", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
}
