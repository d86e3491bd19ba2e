package auth

import (
	"context"
	"slices"
	"strings"
	"time"
)

// The only scopes that grant anything; every other scope in a token is
// ignored, so an IdP adding scopes for other systems cannot widen access here.
const (
	// ScopeAny lets a backend service act on any user's cart (it must name
	// the user, see AuthorizeUser); end users never get it.
	ScopeAny = "cart:any"
	// ScopeAdmin opens the admin API (rebuild, verify, parked events).
	ScopeAdmin = "cart:admin"
)

// Principal is the verified caller: what a handler may rely on after the
// interceptor let the call through.
type Principal struct {
	// Subject is the token's `sub`: for an end user, the user ID whose cart
	// they own; for a service, its client identity. Recorded in audit trails.
	Subject string
	// Scopes are the words of the token's space-separated `scope` claim.
	Scopes []string
	// ExpiresAt is the token's `exp`: a stream (Watch) is authenticated
	// once, when it opens, so its handler should end it by then. Zero in
	// insecure mode.
	ExpiresAt time.Time
}

// Has reports whether the principal was granted scope; it is the one place
// scope checks go through, so that they compare exact words.
func (p Principal) Has(scope string) bool {
	return scope != "" && slices.Contains(p.Scopes, scope)
}

// parseScopes splits an OAuth2 `scope` claim (RFC 6749 §3.3: space-separated,
// case-sensitive words).
func parseScopes(s string) []string {
	return strings.Fields(s)
}

type principalKey struct{}

// NewContext returns ctx carrying p. The interceptors use it; tests of
// handlers use it to act as a caller without tokens. Product code must not
// build principals from anything but a verified token.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the interceptor verified, and false when
// there is none (an open method such as health, or a call that bypassed the
// interceptors), which handlers must treat as unauthenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.Subject != ""
}
