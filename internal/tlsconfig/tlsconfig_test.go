package tlsconfig_test

import (
	"context"
	"crypto/tls"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/testing/tlstest"
	"github.com/acme/cart/internal/tlsconfig"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name                string
		cert, key, clientCA string
		want                []string
	}{
		{"plaintext", "", "", "", nil},
		{"TLS", "c.pem", "k.pem", "", nil},
		{"mTLS", "c.pem", "k.pem", "ca.pem", nil},
		{"certificate without key", "c.pem", "", "", []string{"together"}},
		{"key without certificate", "", "k.pem", "", []string{"together"}},
		{"client CA without a certificate", "", "", "ca.pem", []string{"ca.pem", "needs a certificate"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tlsconfig.Validate(tc.cert, tc.key, tc.clientCA)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, missing %q", err, w)
				}
			}
		})
	}
}

func TestErrorsNameTheFile(t *testing.T) {
	ca := tlstest.NewCA(t)
	srv := ca.Server(t, "server")
	other := ca.Server(t, "other")
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  func() error
		file string
	}{
		{"server: missing certificate", func() error { _, err := tlsconfig.Server(missing, srv.KeyFile, ""); return err }, missing},
		{"server: missing key", func() error { _, err := tlsconfig.Server(srv.CertFile, missing, ""); return err }, missing},
		{"server: garbage certificate", func() error { _, err := tlsconfig.Server(garbage, srv.KeyFile, ""); return err }, garbage},
		{"server: key of another certificate", func() error { _, err := tlsconfig.Server(srv.CertFile, other.KeyFile, ""); return err }, srv.CertFile},
		{"server: missing client CA", func() error { _, err := tlsconfig.Server(srv.CertFile, srv.KeyFile, missing); return err }, missing},
		{"server: garbage client CA", func() error { _, err := tlsconfig.Server(srv.CertFile, srv.KeyFile, garbage); return err }, garbage},
		{"client: garbage CA", func() error { _, err := tlsconfig.Client(garbage, "", ""); return err }, garbage},
		{"client: missing key", func() error { _, err := tlsconfig.Client(ca.CertFile, srv.CertFile, missing); return err }, missing},
		{"client: certificate without key", func() error { _, err := tlsconfig.Client(ca.CertFile, srv.CertFile, ""); return err }, srv.CertFile},
		{"server: no certificate at all", func() error { _, err := tlsconfig.Server("", "", ""); return err }, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.file) {
				t.Errorf("error %q does not name %q", err, tc.file)
			}
		})
	}
}

// serve runs a gRPC server with the health service behind cfg on a
// loopback port and returns its address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// check makes one health check over a new connection and returns the
// serial number of the certificate the server presented.
func check(t *testing.T, addr string, cfg *tls.Config) (*big.Int, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A bound for a hung handshake, not a timing assertion.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var p peer.Peer
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		return nil, err
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		t.Fatalf("connection without TLS: %T", p.AuthInfo)
	}
	return info.State.PeerCertificates[0].SerialNumber, nil
}

func mustServer(t *testing.T, certFile, keyFile, clientCAFile string) *tls.Config {
	t.Helper()
	cfg, err := tlsconfig.Server(certFile, keyFile, clientCAFile)
	if err != nil {
		t.Fatalf("Server: %v", err)
	}
	return cfg
}

func mustClient(t *testing.T, caFile, certFile, keyFile string) *tls.Config {
	t.Helper()
	cfg, err := tlsconfig.Client(caFile, certFile, keyFile)
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	return cfg
}

func TestHandshakes(t *testing.T) {
	ca := tlstest.NewCA(t)
	stranger := tlstest.NewCA(t)
	srv := ca.Server(t, "server")
	alice := ca.Client(t, "alice")
	mallory := stranger.Client(t, "mallory")
	tests := []struct {
		name   string
		mutual bool
		client *tls.Config
		ok     bool
	}{
		{"TLS: client trusting the CA", false, mustClient(t, ca.CertFile, "", ""), true},
		{"TLS: client certificate not asked for", false, mustClient(t, ca.CertFile, alice.CertFile, alice.KeyFile), true},
		{"TLS: client trusting another CA", false, mustClient(t, stranger.CertFile, "", ""), false},
		{"mTLS: client certificate from the CA", true, mustClient(t, ca.CertFile, alice.CertFile, alice.KeyFile), true},
		{"mTLS: no client certificate", true, mustClient(t, ca.CertFile, "", ""), false},
		{"mTLS: client certificate from another CA", true, mustClient(t, ca.CertFile, mallory.CertFile, mallory.KeyFile), false},
		{"TLS 1.2 client", false, &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12}, true},
		{"TLS 1.1 client", false, &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clientCA := ""
			if tc.mutual {
				clientCA = ca.CertFile
			}
			addr := serve(t, mustServer(t, srv.CertFile, srv.KeyFile, clientCA))

			serial, err := check(t, addr, tc.client)

			if !tc.ok {
				if status.Code(err) != codes.Unavailable {
					t.Fatalf("check = %v, want the handshake refused (Unavailable)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if serial.Cmp(srv.Cert.SerialNumber) != 0 {
				t.Errorf("server presented serial %v, want %v", serial, srv.Cert.SerialNumber)
			}
		})
	}
}

func TestClientRequiresTLS13(t *testing.T) {
	ca := tlstest.NewCA(t)
	srv := ca.Server(t, "server")
	server := mustServer(t, srv.CertFile, srv.KeyFile, "")
	server.MaxVersion = tls.VersionTLS12 // an old server
	addr := serve(t, server)

	_, err := check(t, addr, mustClient(t, ca.CertFile, "", ""))

	if status.Code(err) != codes.Unavailable {
		t.Fatalf("check against a TLS 1.2 server = %v, want refused", err)
	}
}

func TestServerCertificateRotation(t *testing.T) {
	ca := tlstest.NewCA(t)
	first := ca.Server(t, "server")
	addr := serve(t, mustServer(t, first.CertFile, first.KeyFile, ""))
	client := mustClient(t, ca.CertFile, "", "")
	expect := func(step string, want *big.Int) {
		t.Helper()
		serial, err := check(t, addr, client)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if serial.Cmp(want) != 0 {
			t.Fatalf("%s: server presented serial %v, want %v", step, serial, want)
		}
	}
	expect("before the rotation", first.Cert.SerialNumber)

	second := ca.Reissue(t, first)
	expect("after the rotation", second.Cert.SerialNumber)

	// Half a rotation: a new certificate whose key is not there yet. New
	// connections keep getting the previous certificate.
	third := ca.Reissue(t, second)
	if err := os.WriteFile(third.KeyFile, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(third.KeyFile, future, future); err != nil {
		t.Fatal(err)
	}
	expect("during a broken rotation", second.Cert.SerialNumber)

	fourth := ca.Reissue(t, third)
	later := future.Add(time.Hour)
	for _, f := range []string{fourth.CertFile, fourth.KeyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	expect("after the rotation is completed", fourth.Cert.SerialNumber)
}

func TestClientCertificateRotation(t *testing.T) {
	ca := tlstest.NewCA(t)
	srv := ca.Server(t, "server")
	alice := ca.Client(t, "alice")
	server := mustServer(t, srv.CertFile, srv.KeyFile, ca.CertFile)
	seen := make(chan *big.Int, 2)
	server.VerifyConnection = func(cs tls.ConnectionState) error {
		seen <- cs.PeerCertificates[0].SerialNumber
		return nil
	}
	addr := serve(t, server)
	client := mustClient(t, ca.CertFile, alice.CertFile, alice.KeyFile)

	connect := func(step string, want *big.Int) {
		t.Helper()
		if _, err := check(t, addr, client); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got := <-seen; got.Cmp(want) != 0 {
			t.Errorf("%s: client presented serial %v, want %v", step, got, want)
		}
	}
	connect("before the rotation", alice.Cert.SerialNumber)
	connect("after the rotation", ca.Reissue(t, alice).Cert.SerialNumber)
}
