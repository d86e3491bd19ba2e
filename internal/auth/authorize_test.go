package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/acme/cart/internal/auth"
)

func TestAuthorizeUser(t *testing.T) {
	user := auth.Principal{Subject: "alice", Scopes: []string{"openid", "profile"}}
	service := auth.Principal{Subject: "checkout-svc", Scopes: []string{auth.ScopeAny}}
	admin := auth.Principal{Subject: "ops", Scopes: []string{auth.ScopeAdmin}}

	tests := []struct {
		name      string
		principal *auth.Principal // nil: no principal in the context
		requested string
		want      auth.Actor
		wantErr   error
	}{
		{name: "own cart", principal: &user, requested: "alice",
			want: auth.Actor{UserID: "alice", Principal: "alice"}},
		{name: "empty user filled in from sub", principal: &user, requested: "",
			want: auth.Actor{UserID: "alice", Principal: "alice"}},
		{name: "other user denied", principal: &user, requested: "bob", wantErr: auth.ErrPermissionDenied},
		{name: "user ids compare exactly", principal: &user, requested: "Alice", wantErr: auth.ErrPermissionDenied},
		{name: "cart:any acts for a user", principal: &service, requested: "bob",
			want: auth.Actor{UserID: "bob", Principal: "checkout-svc", OnBehalfOf: "bob"}},
		{name: "cart:any must name the user", principal: &service, requested: "", wantErr: auth.ErrUserRequired},
		{name: "cart:any on its own subject", principal: &service, requested: "checkout-svc",
			want: auth.Actor{UserID: "checkout-svc", Principal: "checkout-svc"}},
		{name: "cart:admin grants no cart", principal: &admin, requested: "bob", wantErr: auth.ErrPermissionDenied},
		{name: "scope look-alike grants nothing", principal: &auth.Principal{Subject: "x", Scopes: []string{"cart:anything", "CART:ANY"}},
			requested: "bob", wantErr: auth.ErrPermissionDenied},
		{name: "no principal", requested: "alice", wantErr: auth.ErrUnauthenticated},
		{name: "principal without subject", principal: &auth.Principal{Scopes: []string{auth.ScopeAny}}, requested: "alice",
			wantErr: auth.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.principal != nil {
				ctx = auth.NewContext(ctx, *tt.principal)
			}
			got, err := auth.AuthorizeUser(ctx, tt.requested)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("AuthorizeUser = %+v, %v; want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("AuthorizeUser: %v", err)
			}
			if got != tt.want {
				t.Errorf("AuthorizeUser = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRequireScope(t *testing.T) {
	tests := []struct {
		name      string
		principal *auth.Principal
		scope     string
		wantErr   error
	}{
		{name: "granted", principal: &auth.Principal{Subject: "ops", Scopes: []string{"openid", auth.ScopeAdmin}}, scope: auth.ScopeAdmin},
		{name: "missing", principal: &auth.Principal{Subject: "alice", Scopes: []string{auth.ScopeAny}}, scope: auth.ScopeAdmin, wantErr: auth.ErrPermissionDenied},
		{name: "no scopes", principal: &auth.Principal{Subject: "alice"}, scope: auth.ScopeAdmin, wantErr: auth.ErrPermissionDenied},
		{name: "empty scope is never granted", principal: &auth.Principal{Subject: "alice", Scopes: []string{""}}, scope: "", wantErr: auth.ErrPermissionDenied},
		{name: "no principal", scope: auth.ScopeAdmin, wantErr: auth.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.principal != nil {
				ctx = auth.NewContext(ctx, *tt.principal)
			}
			err := auth.RequireScope(ctx, tt.scope)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("RequireScope: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("RequireScope = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
