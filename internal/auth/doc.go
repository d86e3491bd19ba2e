// Package auth is the trust boundary of the cart services: who is calling,
// and which carts they may touch.
//
// Callers include untrusted mobile apps, so nothing a caller says about itself
// is believed except what an identity provider signed. A Verifier checks an
// OAuth2/OIDC bearer JWT against the provider's JWKS (asymmetric algorithms
// only: RS256, ES256, EdDSA), its issuer, audience and lifetime. The gRPC
// interceptors of an Authenticator turn a verified token into a Principal in
// the request context; the handlers then call AuthorizeUser or RequireScope.
//
// The token's `sub` is the user. An end user may act only on their own cart.
// Only two scopes grant more: ScopeAny (a backend service acting for any user,
// which must name that user) and ScopeAdmin (the admin API). NewInsecure
// accepts everyone, for local development only, and says so loudly.
package auth
