package rpc

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/tlsconfig"
)

// metricsFlags defines --metrics-listen and --pprof, the same on both
// services.
func (c *ServerConfig) metricsFlags(fs *cli.FlagSet) {
	fs.StringVar(&c.MetricsListen, "metrics-listen", "CART_METRICS_LISTEN", "",
		"host:port of the private HTTP listener serving /metrics for Prometheus; empty: off")
	fs.BoolVar(&c.Pprof, "pprof", "CART_PPROF", false,
		"serve net/http/pprof under /debug/pprof/ on the metrics listener (keep that listener private)")
}

// MetricsEnabled tells whether the metrics listener is on.
func (c ServerConfig) MetricsEnabled() bool { return c.MetricsListener != nil || c.MetricsListen != "" }

func (c ServerConfig) validateMetrics() []error {
	var errs []error
	if c.MetricsListener == nil && c.MetricsListen != "" {
		if err := CheckAddr("metrics-listen", c.MetricsListen); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Pprof && !c.MetricsEnabled() {
		errs = append(errs, errors.New("pprof: needs --metrics-listen, the listener it is served on"))
	}
	return errs
}

// metricsAddr is the metrics listener's address for the start-up line.
func (c ServerConfig) metricsAddr() string {
	if c.MetricsListener != nil {
		return c.MetricsListener.Addr().String()
	}
	return c.MetricsListen
}

// BindMetrics returns the metrics listener: the one given, a new one on
// MetricsListen, or nil when metrics are off. Binding before serving makes
// a port in use fail the start, like the API's own. With --tls-cert the
// listener speaks the same TLS as the API (and with --tls-client-ca wants
// the same client certificates, so Prometheus scrapes with one): no
// listener of a service is plaintext once TLS is on.
func (c ServerConfig) BindMetrics() (net.Listener, error) {
	var lis net.Listener
	switch {
	case c.MetricsListener != nil:
		lis = c.MetricsListener
	case c.MetricsListen == "":
		return nil, nil
	default:
		var err error
		if lis, err = net.Listen("tcp", c.MetricsListen); err != nil {
			return nil, fmt.Errorf("metrics listen: %w", err)
		}
	}
	if c.Security.TLSCert == "" {
		return lis, nil
	}
	cfg, err := tlsconfig.Server(c.Security.TLSCert, c.Security.TLSKey, c.Security.TLSClientCA)
	if err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("metrics listen: tls: %w", err)
	}
	cfg.NextProtos = []string{"http/1.1"}
	return tls.NewListener(lis, cfg), nil
}
