// Command carttoken prints a bearer token for the local stack, signed by the
// dev identity provider of internal/dev/devauth (key and JWKS under
// <data-dir>/auth, created on first use):
//
//	go run ./cmd/dev/carttoken -sub alice
//	go run ./cmd/dev/carttoken -sub checkout -scope 'cart:any cart:admin' -ttl 8h
//
// Only the token goes to stdout, so it composes with shells:
// grpcurl -H "authorization: Bearer $(go run ./cmd/dev/carttoken -sub alice)".
// The services accept it when started with the JWKS file it reports on
// stderr, issuer cart-dev and audience cart.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/acme/cart/internal/cli"
	"github.com/acme/cart/internal/dev/devauth"
)

// defaultDataDir matches the local stack's (internal/dev/stack), without
// linking the stores into this small tool.
const defaultDataDir = ".data"

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "carttoken:", err)
		}
		os.Exit(2)
	}
}

// config is the command's configuration: flags, with environment variables
// as fallbacks and defaults below both.
type config struct {
	Subject string
	Scope   string
	DataDir string
	TTL     time.Duration
	Quiet   bool
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	fs := cli.NewFlagSet("carttoken", getenv, stderr)
	fs.StringVar(&cfg.Subject, "sub", "CART_TOKEN_SUB", "",
		"the token's subject: the user whose cart it opens, or a service's name")
	fs.StringVar(&cfg.Scope, "scope", "CART_TOKEN_SCOPE", "",
		"space-separated scopes, e.g. 'cart:any cart:admin'; none for an end user")
	fs.StringVar(&cfg.DataDir, "data-dir", "CART_DATA_DIR", defaultDataDir,
		"the local stack's data directory; the key lives in <data-dir>/auth")
	fs.DurationVar(&cfg.TTL, "ttl", "CART_TOKEN_TTL", time.Hour, "how long the token is valid")
	fs.BoolVar(&cfg.Quiet, "q", "", false, "do not report the JWKS path on stderr")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	return cfg, errors.Join(fs.Err(), cfg.Validate())
}

// Validate reports every problem at once.
func (c config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Subject) == "" {
		errs = append(errs, errors.New("-sub is required"))
	}
	if c.TTL <= 0 {
		errs = append(errs, fmt.Errorf("-ttl %v must be positive", c.TTL))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("-data-dir is required"))
	}
	return errors.Join(errs...)
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	m, err := devauth.Ensure(filepath.Join(cfg.DataDir, "auth"))
	if err != nil {
		return err
	}
	tok, err := m.Mint(cfg.Subject, strings.Fields(cfg.Scope), cfg.TTL)
	if err != nil {
		return err
	}
	if !cfg.Quiet {
		fmt.Fprintf(stderr, "carttoken: accepted by services with JWKS %s, issuer %s, audience %s\n",
			m.JWKSPath(), devauth.Issuer, devauth.Audience)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
