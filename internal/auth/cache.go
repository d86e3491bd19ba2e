package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultVerifiedCacheSize is how many verified tokens a Verifier remembers
// by default: the tokens of the callers active within their lifetimes, a
// few hundred bytes each.
const DefaultVerifiedCacheSize = 10_000

// verifiedCache remembers tokens that passed every check, so that a
// client's next calls with the same token skip parsing and the signature
// check (measured: a fifth of command-svc's CPU per AddItem with ES256).
// An entry answers only while the key set it was verified with is still
// the current one (a reload, a rotation or a withdrawn key forgets every
// entry at once) and while the token's own exp and nbf, with the leeway,
// still allow it. Tokens are keyed by their SHA-256, so the cache holds no
// usable credential.
type verifiedCache struct {
	max int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]verifiedEntry
}

type verifiedEntry struct {
	p         Principal
	notBefore time.Time // zero: no nbf
	keys      *keySet   // the set the signature was checked with
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[[sha256.Size]byte]verifiedEntry)}
}

// get returns the principal of a token verified with keys, if it is still
// within its lifetime at now (leeway included).
func (c *verifiedCache) get(h [sha256.Size]byte, keys *keySet, now time.Time, leeway time.Duration) (Principal, bool) {
	if c.max <= 0 {
		return Principal{}, false
	}
	c.mu.Lock()
	e, ok := c.entries[h]
	c.mu.Unlock()
	if !ok || e.keys != keys || !now.Before(e.p.ExpiresAt.Add(leeway)) || now.Before(e.notBefore.Add(-leeway)) {
		return Principal{}, false
	}
	return e.p, true
}

// put remembers a verified token. When full it first forgets the entries
// of other key sets and the expired ones, then an arbitrary eighth (map
// order is random), so that a flood of distinct valid tokens costs
// verifications, never unbounded memory.
func (c *verifiedCache) put(h [sha256.Size]byte, e verifiedEntry, now time.Time) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, old := range c.entries {
			if old.keys != e.keys || !now.Before(old.p.ExpiresAt) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max-c.max/8 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[h] = e
}

func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
