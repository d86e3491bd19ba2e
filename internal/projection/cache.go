package projection

import "container/list"

// DefaultCacheBytes bounds the documents a projector remembers by default:
// about 1,200 carts of a few lines. A cart's next event comes soon after
// its last one (within a batch or two while catching up, when its user
// acts again while live), so the carts written in the last moments are the
// ones worth keeping; a miss costs one batched read. A bound in bytes, not
// carts, keeps the projector's memory flat however large carts grow and
// however many carts the log holds; it is small beside the process (a
// query-svc takes about 30 MiB), so that a replay of millions of events
// ends within a tenth of the memory its first thousands took.
const DefaultCacheBytes = 512 << 10

// docCache remembers, for the carts a projector wrote or read most
// recently, the document as it is stored (state and version). It saves
// the read before the next write of the cart; it never replaces the
// store's guard: a write made from a cached document still carries the
// cached version as its expected version, and a conflict drops the entry
// and re-reads. Only the flushing goroutine uses it, under flushMu.
type docCache struct {
	max   int // bytes; 0: caching is off
	bytes int // the estimated size of what it holds
	order *list.List
	byID  map[string]*list.Element // elements hold *cached, most recent in front
}

type cached struct {
	doc  CartDoc
	size int
}

func newDocCache(maxBytes int) *docCache {
	return &docCache{max: max(maxBytes, 0), order: list.New(), byID: map[string]*list.Element{}}
}

// docSize estimates what a cached document costs in memory: the entry, its
// list element and map slot, and its strings and lines.
func docSize(d CartDoc) int {
	const entry, line = 256, 96
	n := entry + 2*len(d.UserID) + len(d.StaleReason)
	for _, it := range d.Cart.Items {
		n += line + len(it.ProductID) + len(it.UnitPrice.CurrencyCode)
	}
	return n
}

// get returns the cached document of the user and marks it recent.
func (c *docCache) get(userID string) (CartDoc, bool) {
	e, ok := c.byID[userID]
	if !ok {
		return CartDoc{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cached).doc, true
}

// put remembers doc as the user's stored document, evicting the least
// recently used ones beyond the bound.
func (c *docCache) put(doc CartDoc) {
	if c.max == 0 {
		return
	}
	size := docSize(doc)
	if e, ok := c.byID[doc.UserID]; ok {
		v := e.Value.(*cached)
		c.bytes += size - v.size
		v.doc, v.size = doc, size
		c.order.MoveToFront(e)
	} else {
		c.byID[doc.UserID] = c.order.PushFront(&cached{doc: doc, size: size})
		c.bytes += size
	}
	for c.bytes > c.max && c.order.Len() > 0 {
		c.remove(c.order.Back())
	}
}

func (c *docCache) remove(e *list.Element) {
	v := c.order.Remove(e).(*cached)
	delete(c.byID, v.doc.UserID)
	c.bytes -= v.size
}

// drop forgets the users' documents: they may have changed under us.
func (c *docCache) drop(userIDs ...string) {
	for _, u := range userIDs {
		if e, ok := c.byID[u]; ok {
			c.remove(e)
		}
	}
}

// reset forgets everything: after a restart of the subscription, or when
// something other than this projector may have written any document.
func (c *docCache) reset() {
	c.order.Init()
	clear(c.byID)
	c.bytes = 0
}

func (c *docCache) len() int { return c.order.Len() }
