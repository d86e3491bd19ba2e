package projection

import "sync"

// Notifier tells readers when a cart's document reaches a version, so that a
// read-your-writes query can wait for the projector instead of polling the
// store. The projector calls NotifyDoc after every flush; waiters register with
// Wait. The zero value is not usable; use NewNotifier.
type Notifier struct {
	mu      sync.Mutex
	waiters map[string][]*waiter
}

type waiter struct {
	min  int64
	done chan struct{}
	wake *Wake
}

// Wake is one registration of Wait. C is closed once the document reached
// the version waited for (or every waiter was woken); Doc then tells what
// the notification carried.
type Wake struct {
	C <-chan struct{}
	// doc is the document notified, set before C is closed; nil when the
	// wake-up carried none (WakeAll).
	doc *CartDoc
}

// Doc returns the stored document whose notification closed C, so that a
// read-your-writes query can answer without reading the store again; ok is
// false when the wake-up carried no document (read the store), or before
// C is closed.
func (w *Wake) Doc() (doc CartDoc, ok bool) {
	select {
	case <-w.C:
	default:
		return CartDoc{}, false
	}
	if w.doc == nil {
		return CartDoc{}, false
	}
	return *w.doc, true
}

// NewNotifier returns a Notifier with no waiters.
func NewNotifier() *Notifier {
	return &Notifier{waiters: make(map[string][]*waiter)}
}

// Wait returns a Wake whose C is closed once a notification reports
// userID at minVersion or later, and a cancel function that must be called
// when the caller stops waiting (it releases the registration). Register
// before the last read of the store, so a flush between read and wait is
// not missed.
func (n *Notifier) Wait(userID string, minVersion int64) (*Wake, func()) {
	done := make(chan struct{})
	w := &waiter{min: minVersion, done: done, wake: &Wake{C: done}}
	n.mu.Lock()
	n.waiters[userID] = append(n.waiters[userID], w)
	n.mu.Unlock()
	return w.wake, func() { n.remove(userID, w) }
}

func (n *Notifier) remove(userID string, w *waiter) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ws := n.waiters[userID]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(n.waiters, userID)
	} else {
		n.waiters[userID] = ws
	}
}

// NotifyDoc reports that doc is now stored: it wakes the waiters that asked
// for its version or an earlier one and hands them the document, so that
// they answer without reading it back (the projector's flush calls it).
func (n *Notifier) NotifyDoc(doc CartDoc) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ws := n.waiters[doc.UserID]
	if len(ws) == 0 {
		return
	}
	kept := ws[:0]
	for _, w := range ws {
		if w.min <= doc.Version {
			// The waiter reads it only after done is closed below.
			w.wake.doc = &doc
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	clear(ws[len(kept):])
	if len(kept) == 0 {
		delete(n.waiters, doc.UserID)
	} else {
		n.waiters[doc.UserID] = kept
	}
}

// WakeAll wakes every waiter whatever version it asked for, so that it reads
// the store again. Readers switched to another carts collection (after a
// rebuild) call it: the new collection may already hold the versions they
// wait for, and no projector will announce those versions again.
func (n *Notifier) WakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for u, ws := range n.waiters {
		for _, w := range ws {
			close(w.done)
		}
		delete(n.waiters, u)
	}
}

// waiting returns how many waiters are registered, for tests.
func (n *Notifier) waiting() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, ws := range n.waiters {
		c += len(ws)
	}
	return c
}
