package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readside"
)

// Paging limits of ListParked (AIP-158), the same as the audit trail's
// (package query) so that clients page both alike.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// ParkedPage is one page of the parking lot.
type ParkedPage struct {
	// Events in log order (oldest first).
	Events []projection.ParkedEvent
	// NextPageToken continues after the last event; empty on the last page.
	NextPageToken string
}

// parkedToken is what a page token encodes: the filter it was issued for,
// so that it cannot be used with another, and the last key returned.
type parkedToken struct {
	UserID string `json:"u"`
	After  string `json:"k"`
}

// ListParked returns a page of parked events, only userID's unless it is
// empty. It reads only, so it runs beside any other operation.
func (s *Service) ListParked(ctx context.Context, userID string, pageSize int, token string) (ParkedPage, error) {
	switch {
	case pageSize < 0:
		return ParkedPage{}, &cart.ValidationError{Violations: []cart.FieldViolation{{Field: "page_size", Description: "must not be negative"}}}
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	var after string
	if token != "" {
		t, err := decodeParkedToken(token)
		if err != nil || t.UserID != userID || t.After == "" {
			return ParkedPage{}, ErrBadPageToken
		}
		after = t.After
	}
	// One more than asked tells whether there is a next page.
	evs, err := s.cfg.Parking.ListParked(ctx, userID, after, pageSize+1)
	if err != nil {
		return ParkedPage{}, fmt.Errorf("list parked events: %w", err)
	}
	var page ParkedPage
	if len(evs) > pageSize {
		evs = evs[:pageSize]
		page.NextPageToken = encodeParkedToken(parkedToken{UserID: userID, After: evs[len(evs)-1].Key})
	}
	page.Events = evs
	return page, nil
}

func encodeParkedToken(t parkedToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeParkedToken(s string) (parkedToken, error) {
	var t parkedToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, err
	}
	err = json.Unmarshal(b, &t)
	return t, err
}

// ReplayResult tells how a replay of parked events went.
type ReplayResult struct {
	// Replayed counts the events applied (or found applied already) and
	// removed from the parking lot.
	Replayed int
	// StillParked holds every event of the carts replayed that stays
	// parked: the first one of a cart that failed again (its attempts
	// counted) and the later ones of that cart, which wait behind it.
	StillParked []projection.ParkedEvent
}

// ReplayParked tries the parked events again, only userID's unless it is
// empty: per cart, oldest first, each is decoded (with the projector's
// Decoder, which a deploy may have taught the event's type) and applied to
// the cart's document at the version right before it. The document is
// written with the version guard, the applied events leave the parking lot,
// and the stale flag is cleared once none of the cart's events remain. The
// first event that fails again stops that cart's replay (order matters);
// other carts go on. Each cart is replayed while the live projector does
// not flush, so that a newer event it parks meanwhile is either replayed
// too or applied on top of the replay.
func (s *Service) ReplayParked(ctx context.Context, userID string) (ReplayResult, error) {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return ReplayResult{}, err
	}
	defer end()
	all, err := s.cfg.Parking.ListParked(ctx, userID, "", 0)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("replay parked events: %w", err)
	}
	var users []string
	seen := map[string]bool{}
	for _, p := range all {
		if u := p.Event.UserID; !seen[u] {
			seen[u] = true
			users = append(users, u)
		}
	}
	var res ReplayResult
	for _, u := range users {
		err := s.cfg.Live.Exclusive(ctx, func(ctx context.Context, store readside.CartStore) error {
			replayed, still, err := s.replayCart(ctx, store, u)
			res.Replayed += replayed
			res.StillParked = append(res.StillParked, still...)
			return err
		})
		if err != nil {
			return res, fmt.Errorf("replay parked events of %q: %w", u, err)
		}
	}
	s.log.Info("parked events replayed", "user", userID, "carts", len(users),
		"replayed", res.Replayed, "still_parked", len(res.StillParked))
	return res, nil
}

// replayCart replays one user's parked events onto the document.
func (s *Service) replayCart(ctx context.Context, store readside.CartStore, userID string) (replayed int, still []projection.ParkedEvent, err error) {
	parked, err := s.cfg.Parking.ListParked(ctx, userID, "", 0) // again: the projector may have parked more
	if err != nil {
		return 0, nil, err
	}
	docs, err := store.LoadCarts(ctx, []string{userID})
	if err != nil {
		return 0, nil, err
	}
	doc, stored := docs[userID]
	if !stored {
		doc = projection.CartDoc{UserID: userID, Version: -1}
	}
	base, before := doc.Version, doc
	var (
		done   []string // keys applied now or earlier
		failed error
		rest   []projection.ParkedEvent
	)
	dec := s.cfg.Live.Template().Decode
	for i, p := range parked {
		rev := p.Event.Revision
		if rev <= doc.Version {
			done = append(done, p.Key) // applied already (e.g. redelivered after a deploy)
			continue
		}
		if rev != doc.Version+1 {
			failed = &projection.GapError{DocVersion: doc.Version, Revision: rev}
		} else if e, err := projection.DecodeEvent(dec, p.Event); err != nil {
			failed = err
		} else {
			doc.Cart = doc.Cart.Apply(e)
			doc.Version, doc.UpdatedAt = rev, p.Event.Created
			done = append(done, p.Key)
			continue
		}
		rest = parked[i:]
		break
	}
	doc.Stale, doc.StaleReason = false, ""
	if len(rest) > 0 {
		first := rest[0]
		doc.Stale = true
		doc.StaleReason = fmt.Sprintf("event %s@%d (%s, id %s) not applied: %v",
			first.Event.StreamID, first.Event.Revision, first.Event.Type, first.Event.EventID, failed)
	}
	if doc.Version != before.Version || doc.Stale != before.Stale || doc.StaleReason != before.StaleReason {
		conflicts, err := store.WriteCarts(ctx, []projection.CartWrite{{Doc: doc, Create: !stored, ExpectedVersion: base}})
		if err != nil {
			return 0, nil, err
		}
		if len(conflicts) > 0 {
			// Only another replica's projector can get here (ours waits):
			// nothing was changed, the operator may simply replay again.
			return 0, nil, errors.New("the cart's document changed during the replay; replay again")
		}
	}
	if err := s.cfg.Parking.DeleteParked(ctx, done...); err != nil {
		return 0, nil, err
	}
	if len(rest) > 0 {
		if err := s.cfg.Parking.ReplayFailed(ctx, rest[0].Key, failed.Error()); err != nil {
			return len(done), nil, err
		}
		rest[0].ReplayAttempts++
		rest[0].LastReplayError = failed.Error()
		s.log.Warn("parked event still cannot be applied", "stream", rest[0].Event.StreamID,
			"revision", rest[0].Event.Revision, "type", rest[0].Event.Type, "attempts", rest[0].ReplayAttempts, "err", failed)
	}
	return len(done), rest, nil
}
