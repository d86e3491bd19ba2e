// Package tlstest makes throwaway certificates for tests: a CA, server
// certificates for the loopback names and client certificates, written as
// PEM files into the test's temporary directory, so TLS and mTLS can be
// tested through the same file-based configuration the services use.
//
// Keys are ECDSA P-256 (fast to make); certificates are valid from an hour
// ago for a day, enough for any test and useless anywhere else.
// [CA.Reissue] rewrites a certificate's files in place with a new key and
// serial number, which is how the tests rotate certificates.
//
// Test code only: the services never import it.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway certificate authority whose certificate is in CertFile,
// for the server's client-CA file and the clients' trust file.
type CA struct {
	CertFile string
	Cert     *x509.Certificate

	key *ecdsa.PrivateKey
	dir string
}

// Issued is a certificate written as PEM files, with the parsed certificate
// so a test can tell which one a peer presented.
type Issued struct {
	CertFile string
	KeyFile  string
	Cert     *x509.Certificate

	server bool
	names  []string
}

// NewCA makes a CA whose files live in a fresh t.TempDir().
func NewCA(t testing.TB) *CA {
	t.Helper()
	dir := t.TempDir()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: "cart test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("tlstest: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: CA certificate: %v", err)
	}
	ca := &CA{CertFile: filepath.Join(dir, "ca.pem"), Cert: cert, key: key, dir: dir}
	writePEM(t, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// Pool returns a pool trusting only this CA, for tls.Config in tests that
// do not go through files.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Server issues a server certificate for hosts (DNS names or IP addresses;
// localhost, 127.0.0.1 and ::1 when none are given) into name.pem and
// name-key.pem.
func (ca *CA) Server(t testing.TB, name string, hosts ...string) Issued {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	is := Issued{
		CertFile: filepath.Join(ca.dir, name+".pem"),
		KeyFile:  filepath.Join(ca.dir, name+"-key.pem"),
		server:   true,
		names:    hosts,
	}
	return ca.issue(t, is)
}

// Client issues a client certificate whose subject common name is
// commonName into commonName.pem and commonName-key.pem.
func (ca *CA) Client(t testing.TB, commonName string) Issued {
	t.Helper()
	is := Issued{
		CertFile: filepath.Join(ca.dir, commonName+".pem"),
		KeyFile:  filepath.Join(ca.dir, commonName+"-key.pem"),
		names:    []string{commonName},
	}
	return ca.issue(t, is)
}

// Reissue writes a new certificate and key over old's files, as a
// certificate rotation does, and returns it. Each file is replaced by a
// rename, and both modification times move forward by a second at least, so
// an mtime check notices even on filesystems with coarse timestamps.
func (ca *CA) Reissue(t testing.TB, old Issued) Issued {
	t.Helper()
	var before time.Time
	if fi, err := os.Stat(old.CertFile); err == nil {
		before = fi.ModTime()
	}
	is := ca.issue(t, Issued{CertFile: old.CertFile, KeyFile: old.KeyFile, server: old.server, names: old.names})
	later := time.Now()
	if floor := before.Add(time.Second); later.Before(floor) {
		later = floor
	}
	for _, f := range []string{is.CertFile, is.KeyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatalf("tlstest: %v", err)
		}
	}
	return is
}

func (ca *CA) issue(t testing.TB, is Issued) Issued {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: is.names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if is.server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range is.names {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("tlstest: certificate %s: %v", is.names[0], err)
	}
	if is.Cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatalf("tlstest: certificate %s: %v", is.names[0], err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: key %s: %v", is.names[0], err)
	}
	// The key first: a reader that sees the new certificate finds its key.
	writePEM(t, is.KeyFile, "PRIVATE KEY", keyDER)
	writePEM(t, is.CertFile, "CERTIFICATE", der)
	return is
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: key: %v", err)
	}
	return key
}

// nextSerial is random, as RFC 5280 asks, so every certificate a test makes
// is told apart by its serial number.
func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("tlstest: no randomness: " + err.Error()) // crypto/rand never fails on supported systems
	}
	return n
}

// writePEM replaces path atomically, so a concurrent reader sees the old
// file or the new one, never half of one.
func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
}
