// Package grpctest is the test kit for the gRPC layer: a bounded context
// for calls and the one check of a status that every API test makes (code,
// ErrorInfo reason in this API's domain, BadRequest fields), so that API
// tests across packages assert errors the same way.
package grpctest

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/api/rpc"
)

// Context bounds a test's calls, so that a server that hangs fails the test
// instead of the whole run's timeout.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// WantStatus checks a call's code and its ErrorInfo reason (empty: none)
// and BadRequest field names (none given: none).
func WantStatus(t testing.TB, err error, code codes.Code, reason string, fields ...string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	var gotReason string
	var gotFields []string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			gotReason = d.GetReason()
			if d.GetDomain() != rpc.ErrorDomain {
				t.Errorf("ErrorInfo domain %q, want %q", d.GetDomain(), rpc.ErrorDomain)
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				gotFields = append(gotFields, v.GetField())
			}
		}
	}
	if gotReason != reason {
		t.Errorf("ErrorInfo reason %q, want %q", gotReason, reason)
	}
	if !slices.Equal(gotFields, fields) {
		t.Errorf("BadRequest fields %v, want %v", gotFields, fields)
	}
}
