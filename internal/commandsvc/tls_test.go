package commandsvc_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/commandsvc"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/testing/tlstest"
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
