package projection

import "container/list"

// DefaultCacheSize is how many carts' documents a projector remembers by
// default: a few MB of memory, and more carts than are active at once on
// one query-svc, so that under live traffic a cart's next event is applied
// without reading its document back.
const DefaultCacheSize = 10_000

// docCache remembers, for the carts a projector wrote or read most
// recently, the document as it is stored (state and version). It saves
// the read before the next write of the cart; it never replaces the
// store's guard: a write made from a cached document still carries the
// cached version as its expected version, and a conflict drops the entry
// and re-reads. Only the flushing goroutine uses it, under flushMu.
type docCache struct {
	max   int // 0: caching is off
	order *list.List
	byID  map[string]*list.Element // elements hold CartDoc, most recent in front
}

func newDocCache(size int) *docCache {
	return &docCache{max: max(size, 0), order: list.New(), byID: map[string]*list.Element{}}
}

// get returns the cached document of the user and marks it recent.
func (c *docCache) get(userID string) (CartDoc, bool) {
	e, ok := c.byID[userID]
	if !ok {
		return CartDoc{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(CartDoc), true
}

// put remembers doc as the user's stored document, evicting the least
// recently used one beyond the bound.
func (c *docCache) put(doc CartDoc) {
	if c.max == 0 {
		return
	}
	if e, ok := c.byID[doc.UserID]; ok {
		e.Value = doc
		c.order.MoveToFront(e)
		return
	}
	c.byID[doc.UserID] = c.order.PushFront(doc)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byID, last.Value.(CartDoc).UserID)
	}
}

// drop forgets the users' documents: they may have changed under us.
func (c *docCache) drop(userIDs ...string) {
	for _, u := range userIDs {
		if e, ok := c.byID[u]; ok {
			c.order.Remove(e)
			delete(c.byID, u)
		}
	}
}

// reset forgets everything: after a restart of the subscription, or when
// something other than this projector may have written any document.
func (c *docCache) reset() {
	c.order.Init()
	clear(c.byID)
}

func (c *docCache) len() int { return c.order.Len() }
