package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// unauthenticatedMessage is the only thing a rejected caller learns; which
// check failed goes to the server's log, never to a possible attacker.
const unauthenticatedMessage = "missing or invalid bearer token"

// Metadata keys read by the interceptors.
const (
	// AuthorizationHeader carries "Bearer <token>" (RFC 6750).
	AuthorizationHeader = "authorization"
	// InsecurePrincipalHeader names the caller in insecure mode only; a
	// verifying Authenticator ignores it.
	InsecurePrincipalHeader = "x-principal"
	// InsecureDefaultSubject is the insecure mode's caller without
	// x-principal.
	InsecureDefaultSubject = "anonymous"
)

// Method prefixes that never need a token: probes must work without
// credentials.
const healthPrefix = "/grpc.health.v1.Health/"

var reflectionPrefixes = []string{
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

// Option tunes an Authenticator.
type Option func(*Authenticator)

// WithOpenReflection lets unauthenticated callers use gRPC server reflection
// (v1 and v1alpha), for grpcurl and similar tools; off by default because it
// maps the API for an attacker. It changes nothing when the service does not
// register reflection.
func WithOpenReflection(open bool) Option {
	return func(a *Authenticator) { a.openReflection = open }
}

// Authenticator holds the gRPC server interceptors that authenticate every
// call; build it with New, or NewInsecure for local development.
type Authenticator struct {
	verifier       TokenVerifier
	insecure       bool
	log            *slog.Logger
	openReflection bool
	// lastHealthWarning is when insecure mode was last logged on a health
	// call (unix nanoseconds), to repeat the warning where operators look
	// without a line per probe.
	lastHealthWarning atomic.Int64
}

// insecureHealthWarningEvery spaces the insecure mode's warnings on health
// calls: probes come every few seconds, the warning once a minute.
const insecureHealthWarningEvery = time.Minute

// New returns an Authenticator that lets a call through only with a bearer
// token v accepts (except health, and reflection if opened). A nil v is a
// wiring bug: it fails closed (every call rejected) and logs an error, since
// failing open would be the worst bug here and a panic is no better.
func New(v TokenVerifier, log *slog.Logger, opts ...Option) *Authenticator {
	a := &Authenticator{verifier: v, log: orDiscard(log)}
	for _, o := range opts {
		o(a)
	}
	if v == nil {
		a.verifier = rejectAll{}
		a.log.Error("auth: New without a TokenVerifier: every call will be rejected; use NewInsecure to disable authentication")
	}
	return a
}

// rejectAll is the verifier of a miswired Authenticator.
type rejectAll struct{}

func (rejectAll) Verify(context.Context, string) (Principal, error) {
	return Principal{}, errors.New("auth: no verifier configured")
}

// NewInsecure returns an Authenticator that accepts every caller, for local
// development only (--insecure-no-auth): the principal is whoever the
// x-principal header names (or "anonymous") and holds ScopeAny and ScopeAdmin.
// It logs a warning, since a service running this way has no trust boundary.
func NewInsecure(log *slog.Logger, opts ...Option) *Authenticator {
	a := &Authenticator{insecure: true, log: orDiscard(log)}
	for _, o := range opts {
		o(a)
	}
	a.log.Warn("auth: INSECURE MODE, every caller is accepted with every scope; never run this way outside local development",
		"principal_header", InsecurePrincipalHeader)
	return a
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// Insecure reports whether a accepts every caller, for the service's start
// log and health details.
func (a *Authenticator) Insecure() bool { return a.insecure }

// UnaryServerInterceptor authenticates unary calls; see the package doc.
func (a *Authenticator) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.authenticate(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor authenticates streaming calls (Watch) once, when
// the stream opens.
func (a *Authenticator) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	}
}

// contextStream hands the handler the context with the principal.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

func (a *Authenticator) open(method string) bool {
	if strings.HasPrefix(method, healthPrefix) {
		return true
	}
	if a.openReflection {
		for _, p := range reflectionPrefixes {
			if strings.HasPrefix(method, p) {
				return true
			}
		}
	}
	return false
}

// authenticate returns ctx with the caller's principal, or a status error
// with the one generic message.
func (a *Authenticator) authenticate(ctx context.Context, method string) (context.Context, error) {
	if a.open(method) {
		if a.insecure && strings.HasPrefix(method, healthPrefix) {
			a.warnOnHealth(ctx)
		}
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if a.insecure {
		sub := InsecureDefaultSubject
		if v := md.Get(InsecurePrincipalHeader); len(v) > 0 && strings.TrimSpace(v[0]) != "" {
			sub = strings.TrimSpace(v[0])
		}
		return NewContext(ctx, Principal{Subject: sub, Scopes: []string{ScopeAny, ScopeAdmin}}), nil
	}
	token, err := bearer(md.Get(AuthorizationHeader))
	if err != nil {
		a.reject(ctx, method, slog.LevelDebug, err)
		return nil, status.Error(codes.Unauthenticated, unauthenticatedMessage)
	}
	p, err := a.verifier.Verify(ctx, token)
	if err != nil {
		a.reject(ctx, method, slog.LevelInfo, err)
		return nil, status.Error(codes.Unauthenticated, unauthenticatedMessage)
	}
	return NewContext(ctx, p), nil
}

// warnOnHealth repeats the insecure mode's warning when health is checked
// (at most once per insecureHealthWarningEvery), so that a service left
// without authentication keeps saying so wherever it is probed, not only in
// a start-up line long scrolled away.
func (a *Authenticator) warnOnHealth(ctx context.Context) {
	now := time.Now().UnixNano()
	last := a.lastHealthWarning.Load()
	if last != 0 && now-last < int64(insecureHealthWarningEvery) || !a.lastHealthWarning.CompareAndSwap(last, now) {
		return
	}
	a.log.WarnContext(ctx, "auth: INSECURE MODE (--insecure-no-auth): this service accepts every caller with every scope")
}

// reject logs why a call was refused: a missing token at debug (scanners and
// misconfigured clients are noise), a bad one at info (a wrong issuer or
// audience is how a misconfiguration shows). The token itself is never logged.
func (a *Authenticator) reject(ctx context.Context, method string, level slog.Level, err error) {
	attrs := []any{"method", method, "reason", err.Error()}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, "peer", p.Addr.String())
	}
	a.log.Log(ctx, level, "auth: call rejected", attrs...)
}

var (
	errNoToken       = errors.New("no authorization metadata")
	errManyTokens    = errors.New("more than one authorization metadata value")
	errNotBearer     = errors.New("authorization is not a Bearer token")
	errEmptyBearer   = errors.New("empty Bearer token")
	errBearerSpacing = errors.New("malformed Bearer token")
)

// bearer extracts the token of the single "Bearer <token>" value (the scheme
// is case-insensitive, RFC 7235).
func bearer(values []string) (string, error) {
	switch {
	case len(values) == 0:
		return "", errNoToken
	case len(values) > 1:
		// Two credentials mean a confused or malicious proxy chain.
		return "", errManyTokens
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", errNotBearer
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", errEmptyBearer
	}
	if strings.ContainsAny(token, " \t") {
		return "", errBearerSpacing
	}
	return token, nil
}
