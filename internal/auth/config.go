package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config, chosen for a production IdP.
const (
	// DefaultLeeway tolerates clock skew between the IdP and us on exp, nbf
	// and iat without making expired tokens useful for long.
	DefaultLeeway = 30 * time.Second
	// DefaultMinRefreshInterval bounds how often an unknown `kid` may make us
	// re-read the JWKS, so that tokens with random kids cannot hammer the IdP.
	DefaultMinRefreshInterval = 5 * time.Second
	// DefaultMaxKeyAge is how long keys fetched over https are used before
	// they are fetched again, so that keys the IdP withdrew stop working.
	DefaultMaxKeyAge = time.Hour
)

// Config says which tokens a Verifier accepts and where its keys come from.
// The zero values of the optional fields select the defaults above.
type Config struct {
	// JWKS is the source of the IdP's public keys: a file path (re-read when
	// it changes), or an https:// URL (fetched and cached). Plain http is
	// refused: whoever can rewrite the key set can mint tokens.
	JWKS string
	// Issuer must equal the token's `iss`.
	Issuer string
	// Audience must be one of the token's `aud`: a token minted for another
	// service is not for us.
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat; 0 means
	// DefaultLeeway.
	Leeway time.Duration
	// MinRefreshInterval is the least time between two re-reads of the JWKS
	// prompted by an unknown kid or by age; 0 means
	// DefaultMinRefreshInterval. Tests make it small.
	MinRefreshInterval time.Duration
	// MaxKeyAge is how long keys from an https JWKS are used before being
	// fetched again; 0 means DefaultMaxKeyAge. Files are watched instead.
	MaxKeyAge time.Duration
	// HTTPClient fetches an https JWKS; nil means a client with a 10s
	// timeout. Tests pass the httptest TLS server's client.
	HTTPClient *http.Client
	// Now is the clock for token lifetimes and refresh intervals; nil means
	// time.Now. Tests pass a fake.
	Now func() time.Time
	// Logger receives key refreshes and their failures; nil discards.
	Logger *slog.Logger
	// VerifiedCacheSize bounds how many verified tokens are remembered so
	// that a client's next calls with the same token skip the signature
	// check (see verifiedCache); 0 means DefaultVerifiedCacheSize,
	// negative turns the cache off.
	VerifiedCacheSize int
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.JWKS == "" {
		errs = append(errs, errors.New("JWKS source is required (a file path or an https URL)"))
	} else if isURL(c.JWKS) {
		u, err := url.Parse(c.JWKS)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("JWKS URL: %w", err))
		case u.Scheme != "https":
			errs = append(errs, fmt.Errorf("JWKS URL %q: only https is accepted", c.JWKS))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("JWKS URL %q: no host", c.JWKS))
		}
	}
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	if c.Leeway < 0 {
		errs = append(errs, fmt.Errorf("leeway %v is negative", c.Leeway))
	}
	if c.MinRefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("minimum refresh interval %v is negative", c.MinRefreshInterval))
	}
	if c.MaxKeyAge < 0 {
		errs = append(errs, fmt.Errorf("maximum key age %v is negative", c.MaxKeyAge))
	}
	return errors.Join(errs...)
}

// isURL tells a URL from a file path by its scheme, so that a typo such as
// "http://..." is reported rather than read as a relative path.
func isURL(s string) bool {
	i := strings.Index(s, "://")
	return i > 0 && !strings.ContainsAny(s[:i], "/\\.")
}

func (c Config) withDefaults() Config {
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.MinRefreshInterval == 0 {
		c.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if c.MaxKeyAge == 0 {
		c.MaxKeyAge = DefaultMaxKeyAge
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.VerifiedCacheSize == 0 {
		c.VerifiedCacheSize = DefaultVerifiedCacheSize
	}
	return c
}
