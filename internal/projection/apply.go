package projection

import (
	"fmt"
	"strings"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// entry is an event of the current batch with its decoded form, decoded once
// when it arrives.
type entry struct {
	ev     eventlog.Event
	event  cart.Event
	decErr error
}

// decodeEntry decodes an event's data and metadata with dec (see DecodeEvent).
func decodeEntry(dec Decoder, ev eventlog.Event) entry {
	e, err := DecodeEvent(dec, ev)
	if err != nil {
		return entry{ev: ev, decErr: err}
	}
	return entry{ev: ev, event: e}
}

// isSystemEvent tells EventStoreDB's own records (e.g. $streamDeleted,
// $metadata) apart from cart facts: they carry no cart state.
func isSystemEvent(ev eventlog.Event) bool { return strings.HasPrefix(ev.Type, "$") }

// park is an event to hand to the Parker once the batch's documents are stored.
type park struct {
	ev    eventlog.Event
	cause error
}

// cartState is one user's document while a batch is applied to it.
type cartState struct {
	userID           string
	stored           bool    // a document existed when it was read
	base             int64   // its version then (the write guard)
	doc              CartDoc // the document as the batch leaves it
	changed          bool
	entries          []entry // the batch's events for this user, in log order
	parks            []park
	applied, skipped int
	outcomes         []string // per entry, for its span: outcomeApplied, ...
}

// newCartState starts from the stored document, or from an empty cart at
// version -1 when there is none.
func newCartState(userID string, doc CartDoc, stored bool, entries []entry) *cartState {
	if !stored {
		doc = CartDoc{UserID: userID, Version: -1}
	}
	return &cartState{userID: userID, stored: stored, base: doc.Version, doc: doc, entries: entries}
}

// run applies the batch's events to the document with the version guard:
// the next revision is applied, a revision already reflected is a harmless
// redelivery, and anything else (a gap, or an event that does not decode)
// stops the document where it is, marks it stale and is parked.
func (s *cartState) run() {
	s.outcomes = s.outcomes[:0]
	for _, en := range s.entries {
		rev := en.ev.Revision
		switch {
		case rev <= s.doc.Version:
			s.skipped++
			s.outcomes = append(s.outcomes, outcomeSkipped)
		case rev == s.doc.Version+1 && en.decErr == nil:
			s.outcomes = append(s.outcomes, outcomeApplied)
			s.doc.Cart = s.doc.Cart.Apply(en.event)
			s.doc.Version = rev
			s.doc.UpdatedAt = en.ev.Created
			s.changed = true
			s.applied++
		default:
			cause := en.decErr
			if rev != s.doc.Version+1 {
				cause = &GapError{DocVersion: s.doc.Version, Revision: rev}
			}
			s.parks = append(s.parks, park{ev: en.ev, cause: cause})
			s.outcomes = append(s.outcomes, outcomeParked)
			if !s.doc.Stale {
				s.doc.Stale = true
				s.doc.StaleReason = fmt.Sprintf("event %s@%d (%s, id %s) not applied: %v",
					en.ev.StreamID, rev, en.ev.Type, en.ev.EventID, cause)
				s.changed = true
			}
		}
	}
}

func (s *cartState) write() CartWrite {
	return CartWrite{Doc: s.doc, Create: !s.stored, ExpectedVersion: s.base}
}
