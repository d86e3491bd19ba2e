// Package tlsconfig builds the TLS configurations of the services' gRPC
// servers and of their clients of other services, from PEM files.
//
// Certificates are rotated without a restart: the certificate and key files
// are checked (a stat of each, no read) at every handshake and read again
// when either changed, and a pair that does not load (a rotation half done)
// leaves the previous certificate in use until the files are complete.
//
// Servers accept TLS 1.2 and 1.3: the mobile apps include Android and iOS
// versions without TLS 1.3, and TLS 1.2 is offered only with the ECDHE AEAD
// cipher suites HTTP/2 (RFC 7540 §9.2) permits. Service-to-service clients
// require TLS 1.3, as both ends are ours and current. A client CA file turns
// on mutual TLS: every client must present a certificate that CA signed.
// The CA files are read once; changing a CA needs a restart.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// serverCipherSuites are the TLS 1.2 suites offered (TLS 1.3 suites are not
// configurable in Go and all good): forward secret, AEAD, and allowed by
// HTTP/2, so grpc-go clients never see INADEQUATE_SECURITY.
var serverCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Validate reports every problem with a server's TLS flags at once, without
// reading the files, so a service's Config.Validate can include it: the
// certificate and key come together, and mutual TLS needs both.
func Validate(certFile, keyFile, clientCAFile string) error {
	var errs []error
	if (certFile == "") != (keyFile == "") {
		errs = append(errs, fmt.Errorf("tls: certificate file %q and key file %q must be given together", certFile, keyFile))
	}
	if clientCAFile != "" && certFile == "" && keyFile == "" {
		errs = append(errs, fmt.Errorf("tls: client CA file %q (mutual TLS) needs a certificate and key", clientCAFile))
	}
	return errors.Join(errs...)
}

// Server returns the configuration of a gRPC server presenting the
// certificate in certFile with the key in keyFile (PEM; the certificate file
// may hold the chain), re-read when either file changes. With clientCAFile,
// every client must present a certificate signed by a CA in that PEM file.
// Errors name the file at fault.
func Server(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if err := Validate(certFile, keyFile, clientCAFile); err != nil {
		return nil, err
	}
	if certFile == "" {
		return nil, errors.New("tls: a server needs a certificate file and a key file")
	}
	kp, err := newKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   serverCipherSuites,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.current(), nil },
	}
	if clientCAFile != "" {
		pool, err := loadPool(clientCAFile, "client CA")
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client returns the configuration of a client of another service: it
// trusts the CAs in caFile (the system's roots when empty) and, with
// certFile and keyFile, presents that certificate (re-read when the files
// change) to servers that ask for one. The server name to verify comes from
// the dialled address (grpc-go sets it).
func Client(caFile, certFile, keyFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("tls: client certificate file %q and key file %q must be given together", certFile, keyFile)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	if caFile != "" {
		pool, err := loadPool(caFile, "CA")
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		kp, err := newKeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.current(), nil }
	}
	return cfg, nil
}

func loadPool(file, what string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: %s file: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: %s file %q holds no PEM certificate", what, file)
	}
	return pool, nil
}

// fileStamp tells whether a file changed since it was read: rotations
// replace the file (new inode, size or mtime), or rewrite it (new mtime).
type fileStamp struct {
	info os.FileInfo
}

func (s fileStamp) same(fi os.FileInfo) bool {
	return s.info != nil && os.SameFile(s.info, fi) &&
		s.info.ModTime().Equal(fi.ModTime()) && s.info.Size() == fi.Size()
}

// keyPair is a certificate and key kept current with their files.
type keyPair struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	certSeen fileStamp // the files as last read, loaded or not
	keySeen  fileStamp
}

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	certInfo, err := os.Stat(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate file: %w", err)
	}
	keyInfo, err := os.Stat(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: key file: %w", err)
	}
	cert, err := load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	kp.cert, kp.certSeen, kp.keySeen = cert, fileStamp{certInfo}, fileStamp{keyInfo}
	return kp, nil
}

// current returns the certificate for a new handshake, reading the files
// again if they changed since they were last read. A missing file or a
// pair that does not load keeps the previous certificate: new connections
// must not fail because a rotation is half done.
func (kp *keyPair) current() *tls.Certificate {
	certInfo, err1 := os.Stat(kp.certFile)
	keyInfo, err2 := os.Stat(kp.keyFile)
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if err1 != nil || err2 != nil || (kp.certSeen.same(certInfo) && kp.keySeen.same(keyInfo)) {
		return kp.cert
	}
	// Remember these files whatever happens, so a broken pair is reported
	// once and read again only when it changes again.
	kp.certSeen, kp.keySeen = fileStamp{certInfo}, fileStamp{keyInfo}
	cert, err := load(kp.certFile, kp.keyFile)
	if err != nil {
		slog.Warn("tls: changed certificate not loaded; still using the previous one",
			slog.String("error", err.Error()))
		return kp.cert
	}
	slog.Info("tls: certificate reloaded", slog.String("file", kp.certFile),
		slog.String("subject", cert.Leaf.Subject.String()), slog.Time("not_after", cert.Leaf.NotAfter))
	kp.cert = cert
	return cert
}

func load(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate file %q with key file %q: %w", certFile, keyFile, err)
	}
	if time.Now().After(cert.Leaf.NotAfter) {
		return nil, fmt.Errorf("tls: certificate file %q expired at %s", certFile, cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	return &cert, nil
}
