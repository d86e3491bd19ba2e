package command

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/acme/cart/internal/cart"
)

// state is a cart as the write side loads it: what the rules need (the
// Cart), its version, and the idempotency window of its recent commands.
type state struct {
	cart    cart.Cart
	version int64 // revision of the last event folded in; -1: none
	// lastCommandID is the command ID of the event at version; a snapshot
	// records it so that loading can check the stream still holds that event.
	lastCommandID string
	window        *window
	// snapshotVersion is the version of the snapshot the load started from
	// (-1: none), to decide when the next one is due.
	snapshotVersion int64
}

func newState(windowSize int) *state {
	return &state{version: -1, snapshotVersion: -1, window: newWindow(windowSize)}
}

// apply folds one stored event into the state.
func (s *state) apply(revision int64, e cart.Event, m cart.Metadata) {
	s.cart = s.cart.Apply(e)
	s.version = revision
	s.lastCommandID = m.CommandID
	s.window.record(m.CommandID, m.CommandHash, revision)
}

// windowEntry is what the window remembers of one command: its fingerprint
// and the cart's version after it, which is the command's response.
type windowEntry struct {
	ID      string `json:"id"`
	Hash    string `json:"hash"`
	Version int64  `json:"version"`
}

// window remembers the last size commands that wrote events to a cart, in
// the order they were first written, forgetting the oldest.
type window struct {
	size    int
	entries map[string]windowEntry
	order   []string // oldest first
}

func newWindow(size int) *window {
	return &window{size: size, entries: make(map[string]windowEntry)}
}

// record notes that command id wrote an event at version. A command's events
// are consecutive, so its entry ends at the version of its last event.
func (w *window) record(id, hash string, version int64) {
	if id == "" || w.size <= 0 {
		return
	}
	if _, ok := w.entries[id]; !ok {
		w.order = append(w.order, id)
	}
	w.entries[id] = windowEntry{ID: id, Hash: hash, Version: version}
	for len(w.order) > w.size {
		delete(w.entries, w.order[0])
		w.order = w.order[1:]
	}
}

func (w *window) lookup(id string) (windowEntry, bool) {
	e, ok := w.entries[id]
	return e, ok
}

func (w *window) list() []windowEntry {
	out := make([]windowEntry, len(w.order))
	for i, id := range w.order {
		out[i] = w.entries[id]
	}
	return out
}

// snapshotSchema numbers the snapshot format. Bump it whenever the format or
// the meaning of its fields changes (including how fingerprints are
// computed): snapshots with another number are ignored and rebuilt.
const snapshotSchema = 1

// snapshot is the stored form of a state.
type snapshot struct {
	Schema        int           `json:"schema"`
	UserID        string        `json:"user_id"`
	Version       int64         `json:"version"`
	LastCommandID string        `json:"last_command_id"`
	Cart          cart.Cart     `json:"cart"`
	Commands      []windowEntry `json:"commands"` // oldest first
}

func encodeSnapshot(userID string, s *state) ([]byte, error) {
	b, err := json.Marshal(snapshot{
		Schema:        snapshotSchema,
		UserID:        userID,
		Version:       s.version,
		LastCommandID: s.lastCommandID,
		Cart:          s.cart,
		Commands:      s.window.list(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return b, nil
}

// errSnapshotUnusable marks a snapshot that is ignored; the cart is then
// loaded from its full stream.
var errSnapshotUnusable = errors.New("snapshot unusable")

// decodeSnapshot turns a stored snapshot into a state, refusing anything it
// cannot fully vouch for: another schema, another user, broken invariants.
func decodeSnapshot(data []byte, userID string, windowSize int) (*state, error) {
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshotUnusable, err)
	}
	switch {
	case snap.Schema != snapshotSchema:
		return nil, fmt.Errorf("%w: schema %d, want %d", errSnapshotUnusable, snap.Schema, snapshotSchema)
	case snap.UserID != userID:
		return nil, fmt.Errorf("%w: snapshot of user %q", errSnapshotUnusable, snap.UserID)
	case snap.Version < 0:
		return nil, fmt.Errorf("%w: version %d", errSnapshotUnusable, snap.Version)
	}
	for _, it := range snap.Cart.Items {
		if it.ProductID == "" || it.Quantity < cart.MinQuantity {
			return nil, fmt.Errorf("%w: bad line %+v", errSnapshotUnusable, it)
		}
	}
	s := newState(windowSize)
	s.cart = snap.Cart
	s.version = snap.Version
	s.lastCommandID = snap.LastCommandID
	s.snapshotVersion = snap.Version
	for _, e := range snap.Commands {
		if e.ID == "" || e.Version < 0 || e.Version > snap.Version {
			return nil, fmt.Errorf("%w: bad command entry %+v", errSnapshotUnusable, e)
		}
		s.window.record(e.ID, e.Hash, e.Version)
	}
	return s, nil
}
