package projection

import (
	"context"
	"fmt"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// Source starts subscriptions to the cart events of $all.
type Source interface {
	// Subscribe delivers every cart event strictly after from (nil: from the
	// start of the log), in log order.
	Subscribe(ctx context.Context, from *eventlog.Position) (eventlog.Subscription, error)
}

// CartDoc is one user's cart in the read model: the state after the events
// up to Version, and whether the projector got stuck on a later event.
type CartDoc struct {
	UserID string
	Cart   cart.Cart
	// Version is the revision of the last event applied; -1 for none.
	Version int64
	// UpdatedAt is when the last applied event was recorded; zero for none.
	UpdatedAt time.Time
	// Stale is set when an event of this cart could not be applied (it was
	// handed to the Parker), so the document may lag behind the log.
	Stale bool
	// StaleReason says which event and why, for operators.
	StaleReason string
}

// CartWrite is one document to store, guarded so that a document another
// projector (another replica, or an earlier run) has moved on is never
// overwritten with an older state.
type CartWrite struct {
	Doc CartDoc
	// Create says no document existed when it was read: insert it, and a
	// duplicate key means someone else created it first.
	Create bool
	// ExpectedVersion is the stored document's version when it was read;
	// the write applies only if it still is (ignored with Create).
	ExpectedVersion int64
	// Known says ExpectedVersion is not from a read in this flush but
	// what the projector itself wrote or read earlier, after its last
	// LoadCheckpoint and with no Exclusive since (its document cache). A
	// store whose guard is a read of the versions before the write may
	// skip that read for such a write when it can tell that no other
	// writer has held the collection since that LoadCheckpoint; a guard in
	// the write's own filter is unaffected. A conflict is handled as
	// always: the projector drops what it knew and reads the document.
	Known bool
}

// Store is the read model as the projector writes it.
type Store interface {
	// LoadCheckpoint returns the position stored under name, or nil when
	// there is none (start from the beginning of the log).
	LoadCheckpoint(ctx context.Context, name string) (*eventlog.Position, error)
	// SaveCheckpoint stores pos under name. It must never move a stored
	// checkpoint backwards.
	SaveCheckpoint(ctx context.Context, name string, pos eventlog.Position) error
	// LoadCarts returns the stored documents of the given users; users
	// without a document are absent from the map.
	LoadCarts(ctx context.Context, userIDs []string) (map[string]CartDoc, error)
	// WriteCarts applies the writes and returns the users whose guard
	// failed: a create that found a document (whatever its version), or a
	// replace whose document had moved on, unless it is already at the
	// version written. Not an error: the projector re-reads those and
	// tries again.
	WriteCarts(ctx context.Context, writes []CartWrite) (conflicts []string, err error)
}

// Parker receives the events the projector cannot apply: events that do not
// decode and events that arrive after a gap in their cart's versions. The
// projector marks the cart stale and does not advance it past such an event,
// so nothing is silently skipped. Park may be called again for the same
// event (after a restart, or when a batch is retried), so it must be
// idempotent (e.g. keyed by stream and revision). An error from Park fails
// the batch, which is retried from the last checkpoint.
type Parker interface {
	Park(ctx context.Context, ev eventlog.Event, cause error) error
}

// GapError says an event arrived while its cart's document was not at the
// version right before it: events in between are missing from the read
// model (a poison event before it, or a truncated stream).
type GapError struct {
	DocVersion int64
	Revision   int64
}

// Error says both versions, which is what an operator needs to find the
// missing events.
func (e *GapError) Error() string {
	return fmt.Sprintf("version gap: document at %d, event revision %d", e.DocVersion, e.Revision)
}
