package auth

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors of authorization, for the API layer's single error→status
// mapping; the returned errors wrap them with detail for logs.
var (
	// ErrUnauthenticated: no verified principal in the context
	// (codes.Unauthenticated).
	ErrUnauthenticated = errors.New("auth: unauthenticated")
	// ErrPermissionDenied: the principal is known but may not do this
	// (codes.PermissionDenied).
	ErrPermissionDenied = errors.New("auth: permission denied")
	// ErrUserRequired: a ScopeAny caller did not say which user it acts for;
	// guessing would be a bug waiting to happen (codes.InvalidArgument).
	ErrUserRequired = errors.New("auth: user_id required when acting for other users")
)

// Actor is what a request acts as, after authorization: whose cart, and who
// to record in the audit trail (event metadata).
type Actor struct {
	// UserID is the cart owner the request acts on; use it, never the
	// request's field, from here on.
	UserID string
	// Principal is the verified subject of the caller.
	Principal string
	// OnBehalfOf is the user a ScopeAny service acts for; empty when the
	// caller acts on its own cart. Equal to UserID when set.
	OnBehalfOf string
}

// AuthorizeUser decides whether the caller in ctx may act on the cart of
// requestedUserID, and returns the Actor to use. An end user may act only on
// their own cart: requestedUserID must equal the token's subject, or be empty
// (filled in from the subject). A ScopeAny principal may act for any user but
// must name one (ErrUserRequired). Errors wrap ErrUnauthenticated,
// ErrPermissionDenied or ErrUserRequired.
func AuthorizeUser(ctx context.Context, requestedUserID string) (Actor, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Actor{}, ErrUnauthenticated
	}
	switch {
	case requestedUserID == p.Subject:
		return Actor{UserID: p.Subject, Principal: p.Subject}, nil
	case p.Has(ScopeAny) && requestedUserID == "":
		return Actor{}, fmt.Errorf("principal %q has %s: %w", p.Subject, ScopeAny, ErrUserRequired)
	case p.Has(ScopeAny):
		return Actor{UserID: requestedUserID, Principal: p.Subject, OnBehalfOf: requestedUserID}, nil
	case requestedUserID == "":
		return Actor{UserID: p.Subject, Principal: p.Subject}, nil
	default:
		return Actor{}, fmt.Errorf("principal %q may not act on the cart of user %q: %w",
			p.Subject, requestedUserID, ErrPermissionDenied)
	}
}

// RequireScope checks that the caller in ctx was granted scope (ScopeAdmin
// for the admin API). Errors wrap ErrUnauthenticated or ErrPermissionDenied.
// The audit trail takes the principal from FromContext.
func RequireScope(ctx context.Context, scope string) error {
	p, ok := FromContext(ctx)
	if !ok {
		return ErrUnauthenticated
	}
	if !p.Has(scope) {
		return fmt.Errorf("principal %q lacks scope %q: %w", p.Subject, scope, ErrPermissionDenied)
	}
	return nil
}
