package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// EventReader reads a user's events straight from the event log; history and
// time travel use it so that they are complete and exact even while the read
// model is behind or being rebuilt.
type EventReader interface {
	// ReadStream returns at most count events (count <= 0: all) of the
	// user's stream from revision from on; a missing stream gives none.
	ReadStream(ctx context.Context, userID string, from int64, count int) ([]eventlog.Event, error)
}

// Paging limits of GetCartHistory (AIP-158).
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// replayBatch is how many events a replay reads per round trip.
const replayBatch = 500

// Entry is one event of a cart's audit trail. Event is nil when the stored
// event cannot be decoded (DecodeErr says why); Data keeps the stored JSON
// so that nothing of the log is hidden from an auditor.
type Entry struct {
	Version   int64
	EventID   string
	Type      string
	Recorded  time.Time
	Metadata  cart.Metadata
	Event     cart.Event
	Data      []byte
	DecodeErr error
}

// HistoryPage is one page of a cart's audit trail.
type HistoryPage struct {
	Entries []Entry
	// NextPageToken continues after the last entry; empty when the log had
	// no more events at the time of the call.
	NextPageToken string
}

// pageToken is what a page token encodes; the user is inside so that a
// token cannot be replayed against another cart.
type pageToken struct {
	UserID string `json:"u"`
	From   int64  `json:"f"`
}

// GetCartHistory returns one page of the user's events, oldest first.
func (s *Service) GetCartHistory(ctx context.Context, userID string, pageSize int, token string) (HistoryPage, error) {
	switch {
	case pageSize < 0:
		return HistoryPage{}, &cart.ValidationError{Violations: []cart.FieldViolation{{Field: "page_size", Description: "must not be negative"}}}
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	from := int64(0)
	if token != "" {
		t, err := decodeToken(token)
		if err != nil || t.UserID != userID || t.From < 0 {
			return HistoryPage{}, ErrBadPageToken
		}
		from = t.From
	}
	// One more than asked tells whether a next page exists without a
	// second round trip.
	recs, err := s.Events.ReadStream(ctx, userID, from, pageSize+1)
	if err != nil {
		return HistoryPage{}, fmt.Errorf("get cart history: %w", err)
	}
	var page HistoryPage
	if len(recs) > pageSize {
		recs = recs[:pageSize]
		page.NextPageToken = encodeToken(pageToken{UserID: userID, From: recs[len(recs)-1].Revision + 1})
	}
	page.Entries = make([]Entry, len(recs))
	for i, r := range recs {
		page.Entries[i] = toEntry(r)
	}
	return page, nil
}

func toEntry(r eventlog.Event) Entry {
	e := Entry{Version: r.Revision, EventID: r.EventID, Type: r.Type, Recorded: r.Created, Data: r.Data}
	e.Metadata, _ = cart.UnmarshalMetadata(r.Metadata) // unreadable metadata shows as empty, the event still shows
	e.Event, e.DecodeErr = cart.Unmarshal(r.Type, r.Data)
	return e
}

func encodeToken(t pageToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) (pageToken, error) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, err
	}
	err = json.Unmarshal(b, &t)
	return t, err
}

// pastCart is a cart as it was at some point of its history.
type pastCart struct {
	cart cart.Cart
	// version is the revision of the last event applied; -1 before any.
	version int64
	// updated is when that event was recorded; zero before any.
	updated time.Time
}

// GetCartAsOfVersion replays the user's events up to and including version
// with the write model's own Apply. -1 is the cart before any event; a
// version past the last one is ErrOutOfRange.
func (s *Service) GetCartAsOfVersion(ctx context.Context, userID string, version int64) (CartView, error) {
	if version < -1 {
		return CartView{}, &cart.ValidationError{Violations: []cart.FieldViolation{{Field: "as_of_version", Description: "must be -1 or more"}}}
	}
	past, err := s.replay(ctx, userID, func(r eventlog.Event) bool { return r.Revision <= version })
	if err != nil {
		return CartView{}, fmt.Errorf("get cart as of version %d: %w", version, err)
	}
	if past.version < version {
		return CartView{}, fmt.Errorf("%w: the cart's last version is %d", ErrOutOfRange, past.version)
	}
	return NewCartView(userID, past.cart, past.version, past.updated, false), nil
}

// GetCartAsOfTime replays the user's events recorded at or before t. A time
// before the first event gives the empty cart (version -1).
func (s *Service) GetCartAsOfTime(ctx context.Context, userID string, t time.Time) (CartView, error) {
	past, err := s.replay(ctx, userID, func(r eventlog.Event) bool { return !r.Created.After(t) })
	if err != nil {
		return CartView{}, fmt.Errorf("get cart as of %s: %w", t.Format(time.RFC3339Nano), err)
	}
	return NewCartView(userID, past.cart, past.version, past.updated, false), nil
}

// replay folds the user's events from the start for as long as keep says so.
// Recorded times and revisions only grow along a stream, so the first event
// not kept ends the replay. An event that does not decode fails the replay:
// a past state computed without it would be wrong.
func (s *Service) replay(ctx context.Context, userID string, keep func(eventlog.Event) bool) (pastCart, error) {
	past := pastCart{version: -1}
	for from := int64(0); ; {
		recs, err := s.Events.ReadStream(ctx, userID, from, replayBatch)
		if err != nil {
			return pastCart{}, err
		}
		for _, r := range recs {
			if !keep(r) {
				return past, nil
			}
			e, err := cart.Unmarshal(r.Type, r.Data)
			if err != nil {
				return pastCart{}, fmt.Errorf("replay %s@%d: %w", userID, r.Revision, err)
			}
			past.cart = past.cart.Apply(e)
			past.version = r.Revision
			past.updated = r.Created
		}
		if len(recs) < replayBatch {
			return past, nil
		}
		from = recs[len(recs)-1].Revision + 1
	}
}
