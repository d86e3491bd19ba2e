package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// The accepted JWS algorithms: asymmetric only, so that the keys we hold can
// verify but never mint. "none" and every HMAC are refused before any key is
// looked at; that also defeats HS256 "signed" with the RSA public key.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
)

// maxTokenBytes bounds what we parse; real access tokens are a few KB, and
// the library leaves bounding input to its caller.
const maxTokenBytes = 16 << 10

// fetchTimeout bounds one read of the JWKS, whatever the HTTP client's own
// timeout; callers with an unknown kid wait for it.
const fetchTimeout = 10 * time.Second

// ErrInvalidToken is wrapped by every error of Verify, whatever the reason
// (malformed, bad signature, unknown key, expired, wrong issuer or audience):
// callers must not tell attackers which check failed, only log it.
var ErrInvalidToken = errors.New("invalid token")

// TokenVerifier turns a bearer token into a Principal. *Verifier is the real
// one; the interface lets the interceptors be tested with fakes.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (Principal, error)
}

// Verifier checks OAuth2/OIDC access tokens (JWTs) against an IdP's JWKS. It
// is safe for concurrent use.
type Verifier struct {
	cfg Config
	src source
	log *slog.Logger

	keys atomic.Pointer[keySet]
	// verified remembers tokens that passed, under the key set they were
	// checked with (see verifiedCache).
	verified *verifiedCache

	// refreshMu serializes re-reads of the JWKS and guards lastAttempt.
	refreshMu   sync.Mutex
	lastAttempt time.Time
}

var _ TokenVerifier = (*Verifier)(nil)

// NewVerifier validates cfg and loads the JWKS once, so that a wrong path,
// URL or key set stops the service at start rather than rejecting every call.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	cfg = cfg.withDefaults()
	v := &Verifier{cfg: cfg, log: cfg.Logger, verified: newVerifiedCache(cfg.VerifiedCacheSize)}
	if isURL(cfg.JWKS) {
		v.src = urlSource{url: cfg.JWKS, client: cfg.HTTPClient, maxAge: cfg.MaxKeyAge}
	} else {
		v.src = fileSource{path: cfg.JWKS}
	}
	v.refreshMu.Lock()
	defer v.refreshMu.Unlock()
	if err := v.reloadLocked(ctx, "start"); err != nil {
		return nil, fmt.Errorf("auth: load JWKS from %s: %w", v.src, err)
	}
	return v, nil
}

// Verify checks token and returns its principal. Every error wraps
// ErrInvalidToken and says why, for the server's log only.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	if v == nil {
		// A nil *Verifier in a TokenVerifier is not a nil interface: fail
		// closed rather than crash the server on the first call.
		return Principal{}, fmt.Errorf("%w: no verifier configured", ErrInvalidToken)
	}
	p, err := v.verify(ctx, token)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return p, nil
}

func (v *Verifier) verify(ctx context.Context, token string) (Principal, error) {
	if len(token) > maxTokenBytes {
		return Principal{}, fmt.Errorf("token longer than %d bytes", maxTokenBytes)
	}
	// The key set is brought up to date first (a changed file, keys past
	// their age), so that a cached answer never outlives a withdrawn key.
	ks := v.currentKeys(ctx)
	h := sha256.Sum256([]byte(token))
	now := v.cfg.Now()
	if p, ok := v.verified.get(h, ks, now, v.cfg.Leeway); ok {
		return p, nil
	}
	p, nbf, err := v.check(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	// Remembered under the set current now: if a refresh for an unknown
	// kid replaced ks meanwhile, the entry is under the set that knows it.
	v.verified.put(h, verifiedEntry{p: p, notBefore: nbf, keys: v.keys.Load()}, now)
	return p, nil
}

// check verifies token fully: header, key, signature and claims. It returns
// the principal and the token's nbf (zero if none).
func (v *Verifier) check(ctx context.Context, token string) (Principal, time.Time, error) {
	alg, kid, err := peekHeader(token)
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	switch alg {
	case algRS256, algES256, algEdDSA:
	default:
		return Principal{}, time.Time{}, fmt.Errorf("algorithm %q not accepted", alg)
	}
	if kid == "" {
		return Principal{}, time.Time{}, errors.New("no kid in header")
	}
	key, err := v.key(ctx, kid)
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	if key.alg != alg {
		return Principal{}, time.Time{}, fmt.Errorf("algorithm %q does not match key %q (%s)", alg, kid, key.alg)
	}
	sigAlg, ok := jwa.LookupSignatureAlgorithm(alg)
	if !ok {
		return Principal{}, time.Time{}, fmt.Errorf("algorithm %q unknown to the library", alg)
	}
	tok, err := jwt.ParseString(token,
		jwt.WithKey(sigAlg, key.raw),
		jwt.WithValidate(true),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithRequiredClaim(jwt.SubjectKey),
		// A token without exp would be good forever once leaked.
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithAcceptableSkew(v.cfg.Leeway),
		jwt.WithClock(jwt.ClockFunc(v.cfg.Now)),
	)
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	sub, _ := tok.Subject()
	if sub == "" {
		return Principal{}, time.Time{}, errors.New("empty sub")
	}
	var scopes []string
	if tok.Has("scope") {
		var s string
		if err := tok.Get("scope", &s); err != nil {
			return Principal{}, time.Time{}, fmt.Errorf("scope claim is not a string: %w", err)
		}
		scopes = parseScopes(s)
	}
	exp, _ := tok.Expiration()
	nbf, _ := tok.NotBefore()
	return Principal{Subject: sub, Scopes: scopes, ExpiresAt: exp}, nbf, nil
}

// peekHeader reads alg and kid from the protected header of a compact JWS,
// before any key is chosen; the JSON serializations are not accepted as
// bearer tokens.
func peekHeader(token string) (alg, kid string, err error) {
	msg, err := jws.ParseString(token, jws.WithCompact())
	if err != nil {
		return "", "", fmt.Errorf("not a compact JWS: %w", err)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return "", "", fmt.Errorf("%d signatures", len(sigs))
	}
	h := sigs[0].ProtectedHeaders()
	if h == nil {
		return "", "", errors.New("no protected header")
	}
	a, ok := h.Algorithm()
	if !ok {
		return "", "", errors.New("no alg in header")
	}
	kid, _ = h.KeyID()
	return a.String(), kid, nil
}

// currentKeys returns the key set, re-read first when the source changed.
func (v *Verifier) currentKeys(ctx context.Context) *keySet {
	ks := v.keys.Load()
	if v.src.changed(ks, v.cfg.Now()) {
		// A changed file is the operator's doing, not a caller's: re-read
		// at once. Old https keys go through the rate limit, so that a
		// failing IdP is not asked on every call, and callers do not queue
		// behind a slow IdP: if a refresh is under way they go on with the
		// keys they have.
		_, isFile := v.src.(fileSource)
		v.refresh(ctx, "changed", !isFile, false, func(cur *keySet) bool { return cur != ks })
		ks = v.keys.Load()
	}
	return ks
}

// key returns the key named kid from the current set, re-reading the JWKS
// when the kid is unknown (key rotation), at most once per
// MinRefreshInterval.
func (v *Verifier) key(ctx context.Context, kid string) (publicKey, error) {
	ks := v.keys.Load()
	if k, ok := ks.keys[kid]; ok {
		return k, nil
	}
	v.refresh(ctx, "unknown kid", true, true, func(cur *keySet) bool {
		_, ok := cur.keys[kid]
		return ok
	})
	if k, ok := v.keys.Load().keys[kid]; ok {
		return k, nil
	}
	return publicKey{}, fmt.Errorf("unknown kid %q", kid)
}

// refresh re-reads the JWKS unless done(current set) says another caller
// already did what we need, or, when limited, the last attempt was too
// recent, or, unless wait, another refresh is under way. Failures keep
// the current keys: an IdP hiccup must not lock every user out.
func (v *Verifier) refresh(ctx context.Context, reason string, limited, wait bool, done func(*keySet) bool) {
	if wait {
		v.refreshMu.Lock()
	} else if !v.refreshMu.TryLock() {
		return
	}
	defer v.refreshMu.Unlock()
	if done(v.keys.Load()) {
		return
	}
	if now := v.cfg.Now(); limited && now.Sub(v.lastAttempt) < v.cfg.MinRefreshInterval {
		return
	}
	if err := v.reloadLocked(ctx, reason); err != nil {
		v.log.Warn("auth: JWKS refresh failed, keeping the current keys",
			"reason", reason, "source", v.src.String(), "err", err)
	}
}

// reloadLocked reads and installs the key set; refreshMu is held.
func (v *Verifier) reloadLocked(ctx context.Context, reason string) error {
	now := v.cfg.Now()
	v.lastAttempt = now
	// The caller's deadline must not decide the fetch: a client cancelling
	// at once would otherwise spend the refresh interval for everyone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	doc, version, err := v.src.read(ctx)
	if err != nil {
		return err
	}
	keys, skipped, err := parseKeySet(doc)
	for _, s := range skipped {
		v.log.Debug("auth: JWKS key skipped", "source", v.src.String(), "key", s)
	}
	if err != nil {
		if old := v.keys.Load(); old != nil {
			// Remember the version so a broken file is not re-read on every
			// call; the next change is noticed again.
			v.keys.Store(&keySet{keys: old.keys, loadedAt: old.loadedAt, version: version})
		}
		return err
	}
	v.keys.Store(&keySet{keys: keys, loadedAt: now, version: version})
	v.log.Info("auth: JWKS loaded", "reason", reason, "source", v.src.String(), "keys", len(keys))
	return nil
}
