package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/acme/cart/internal/api/guard"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/tlsconfig"
)

// SecurityConfig is the trust boundary of a service's listeners: who may
// call (bearer JWTs verified against a JWKS, or explicitly nobody checked),
// over what transport (TLS, optionally mutual), and whether the API
// describes itself (reflection).
type SecurityConfig struct {
	// AuthJWKS is the key set tokens are verified with: a file path or an
	// https URL. Required unless InsecureNoAuth.
	AuthJWKS     string
	AuthIssuer   string
	AuthAudience string
	// InsecureNoAuth accepts every caller, taking the principal from the
	// x-principal header: for local development only, never the default.
	InsecureNoAuth bool
	// TLSCert and TLSKey serve TLS (reloaded when the files change);
	// TLSClientCA also requires client certificates signed by it (mTLS).
	TLSCert, TLSKey, TLSClientCA string
	// Reflection serves gRPC server reflection (for grpcurl).
	Reflection bool
}

// Flags defines the security flags on fs.
func (c *SecurityConfig) Flags(fs *cli.FlagSet) {
	fs.StringVar(&c.AuthJWKS, "auth-jwks", "CART_AUTH_JWKS", "",
		"JWKS that bearer tokens are verified with: a file path or an https URL (required unless --insecure-no-auth)")
	fs.StringVar(&c.AuthIssuer, "auth-issuer", "CART_AUTH_ISSUER", "", "the tokens' required iss claim")
	fs.StringVar(&c.AuthAudience, "auth-audience", "CART_AUTH_AUDIENCE", "", "the tokens' required aud claim")
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", "CART_INSECURE_NO_AUTH", false,
		"accept every caller without a token (local development only; logged as a warning)")
	fs.StringVar(&c.TLSCert, "tls-cert", "CART_TLS_CERT", "", "PEM certificate to serve TLS with (with --tls-key)")
	fs.StringVar(&c.TLSKey, "tls-key", "CART_TLS_KEY", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "CART_TLS_CLIENT_CA", "",
		"PEM CA bundle: require client certificates signed by it (mTLS)")
	fs.BoolVar(&c.Reflection, "reflection", "CART_REFLECTION", true, "serve gRPC server reflection")
}

// Validate reports every problem at once.
func (c SecurityConfig) Validate() []error {
	var errs []error
	switch {
	case c.InsecureNoAuth && c.AuthJWKS != "":
		errs = append(errs, errors.New("auth-jwks and insecure-no-auth: give one, not both"))
	case !c.InsecureNoAuth && c.AuthJWKS == "":
		errs = append(errs, errors.New("auth-jwks: required (a JWKS file or https URL); --insecure-no-auth turns authentication off for local development"))
	case c.AuthJWKS != "":
		if err := (auth.Config{JWKS: c.AuthJWKS, Issuer: c.AuthIssuer, Audience: c.AuthAudience}).Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := tlsconfig.Validate(c.TLSCert, c.TLSKey, c.TLSClientCA); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// LogAttrs are the effective values, for the start-up line.
func (c SecurityConfig) LogAttrs() []slog.Attr {
	authMode := "jwt"
	if c.InsecureNoAuth {
		authMode = "none (insecure)"
	}
	return []slog.Attr{
		slog.String("auth", authMode),
		slog.String("auth_jwks", c.AuthJWKS),
		slog.String("auth_issuer", c.AuthIssuer),
		slog.String("auth_audience", c.AuthAudience),
		slog.Bool("tls", c.TLSCert != ""),
		slog.Bool("mtls", c.TLSClientCA != ""),
		slog.Bool("reflection", c.Reflection),
	}
}

// Security is the built trust boundary that NewServer installs on a
// server; build it once per process and share it between its listeners.
type Security struct {
	Auth       *auth.Authenticator
	TLS        credentials.TransportCredentials // nil: plaintext
	Reflection bool
	// Limiter, if set, rate-limits the methods it was built for.
	Limiter *guard.Limiter
	// Observe are interceptors run right after the decode check, outside
	// logging, panic recovery, authentication and rate limits, so they see
	// every call with the code its caller gets (the RPC metrics).
	ObserveUnary  []grpc.UnaryServerInterceptor
	ObserveStream []grpc.StreamServerInterceptor
}

// Build loads the key set and the certificates. A JWKS that cannot be
// loaded fails the start: a service that could verify no token would only
// refuse every call.
func (c SecurityConfig) Build(ctx context.Context, log *slog.Logger) (Security, error) {
	sec := Security{Reflection: c.Reflection}
	if c.InsecureNoAuth {
		sec.Auth = auth.NewInsecure(log, auth.WithOpenReflection(c.Reflection))
	} else {
		v, err := auth.NewVerifier(ctx, auth.Config{JWKS: c.AuthJWKS, Issuer: c.AuthIssuer, Audience: c.AuthAudience, Logger: log})
		if err != nil {
			return Security{}, fmt.Errorf("auth: %w", err)
		}
		sec.Auth = auth.New(v, log, auth.WithOpenReflection(c.Reflection))
	}
	if c.TLSCert != "" {
		cfg, err := tlsconfig.Server(c.TLSCert, c.TLSKey, c.TLSClientCA)
		if err != nil {
			return Security{}, fmt.Errorf("tls: %w", err)
		}
		sec.TLS = credentials.NewTLS(cfg)
	}
	return sec, nil
}

// options are the server options and interceptors of the trust boundary,
// in the order they must run: undecodable requests are refused first, then
// the call is observed (metrics), logged and guarded against panics (and
// gets its correlation ID), then authenticated, then rate-limited by its
// principal.
func (s Security) options(log *slog.Logger) []grpc.ServerOption {
	opts := guard.NewDecoder(log).ServerOptions()
	unary := append(slices.Clone(s.ObserveUnary), unaryInterceptor(log))
	stream := append(slices.Clone(s.ObserveStream), streamInterceptor(log))
	if s.Auth != nil {
		unary = append(unary, s.Auth.UnaryServerInterceptor())
		stream = append(stream, s.Auth.StreamServerInterceptor())
	}
	unary = append(unary, principalUnaryInterceptor) // for the log line: who, once verified
	stream = append(stream, principalStreamInterceptor)
	if s.Limiter != nil {
		unary = append(unary, s.Limiter.UnaryInterceptor())
		stream = append(stream, s.Limiter.StreamInterceptor())
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	if s.TLS != nil {
		opts = append(opts, grpc.Creds(s.TLS))
	}
	return opts
}

// PrincipalKey is the rate limiter's key: the verified subject.
func PrincipalKey(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return p.Subject
	}
	return ""
}
