package command

import (
	"container/list"
	"context"
	"sync"
)

// DefaultCacheSize is how many carts a Handler keeps decided state for by
// default: enough for the carts active in the last minutes of a busy
// instance. A cached cart costs its lines plus its idempotency window;
// measured, a cart whose window is full (100 commands) holds about 28 KB,
// so the default bounds the cache near 300 MB in the worst case; carts
// with few commands cost a fraction of that. Lower it where memory is
// tight: a miss costs only the snapshot load every command did before.
const DefaultCacheSize = 10_000

// stateCache keeps the decided state of recently used carts, so that a
// command on a known cart decides without reading the store and appends at
// the cached version. It is a cache in the strict sense: the stream stays
// the truth, the expected revision of the append tells when an entry is
// behind (another instance wrote), and whatever is doubtful is dropped.
//
// An entry is taken out while a command works on it and put back when the
// command ends with a state it can vouch for; a command that fails in a way
// that leaves the state in doubt simply does not put it back. Since commands
// on one cart are serialized (userLocks), nobody else can want the entry in
// between.
type stateCache struct {
	max int

	mu      sync.Mutex
	entries map[string]*list.Element // of *cacheEntry
	lru     list.List                // front: most recently used
}

type cacheEntry struct {
	userID string
	st     *state
}

// newStateCache returns a cache of at most max carts; max <= 0 disables it.
func newStateCache(max int) *stateCache {
	return &stateCache{max: max, entries: make(map[string]*list.Element)}
}

// take removes userID's state from the cache and returns it, nil if absent.
func (c *stateCache) take(userID string) *state {
	if c.max <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[userID]
	if !ok {
		return nil
	}
	delete(c.entries, userID)
	return c.lru.Remove(el).(*cacheEntry).st
}

// put stores st as userID's current state, evicting the least recently used
// carts beyond the bound.
func (c *stateCache) put(userID string, st *state) {
	if c.max <= 0 || st == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[userID]; ok {
		el.Value.(*cacheEntry).st = st
		c.lru.MoveToFront(el)
		return
	}
	c.entries[userID] = c.lru.PushFront(&cacheEntry{userID: userID, st: st})
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*cacheEntry)
		delete(c.entries, old.userID)
	}
}

// len is the number of cached carts.
func (c *stateCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// userLocks serializes commands on one cart inside an instance: they queue
// for the cart instead of deciding on the same version and all but one
// losing the append (each loser then reads and decides again, and under
// enough load some run out of attempts). Commands on different carts do not
// wait for each other. A lock exists only while someone holds or waits for
// it, so the map stays as small as the number of carts in use.
type userLocks struct {
	mu    sync.Mutex
	locks map[string]*userLock
}

type userLock struct {
	token chan struct{} // holds one value while the cart is locked
	refs  int           // holders and waiters, guarded by userLocks.mu
}

func newUserLocks() *userLocks {
	return &userLocks{locks: make(map[string]*userLock)}
}

// lock waits until the caller has userID's cart to itself, or ctx ends
// (then it returns ctx's error and holds nothing). The returned function
// releases the cart; call it exactly once.
func (u *userLocks) lock(ctx context.Context, userID string) (func(), error) {
	u.mu.Lock()
	l, ok := u.locks[userID]
	if !ok {
		l = &userLock{token: make(chan struct{}, 1)}
		u.locks[userID] = l
	}
	l.refs++
	u.mu.Unlock()

	select {
	case l.token <- struct{}{}:
		return func() {
			<-l.token
			u.release(userID, l)
		}, nil
	case <-ctx.Done():
		u.release(userID, l)
		return nil, ctx.Err()
	}
}

// release drops one reference to l, forgetting the lock after the last.
func (u *userLocks) release(userID string, l *userLock) {
	u.mu.Lock()
	defer u.mu.Unlock()
	l.refs--
	if l.refs == 0 {
		delete(u.locks, userID)
	}
}

// len is the number of carts locked or waited for.
func (u *userLocks) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.locks)
}
