package auth

// VerifiedCacheLen exposes the cache's size to the tests of its bound.
func VerifiedCacheLen(v *Verifier) int { return v.verified.len() }
