package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

// sameDoc tells whether two documents hold the same cart state. The stale
// reason is prose for operators and may differ between two projectors.
func sameDoc(a, b projection.CartDoc) bool {
	return a.Version == b.Version && a.Stale == b.Stale &&
		a.UpdatedAt.Truncate(time.Millisecond).Equal(b.UpdatedAt.Truncate(time.Millisecond)) &&
		slices.Equal(a.Cart.Items, b.Cart.Items)
}

// logView is what a user's stream says a live document must be.
type logView struct {
	// last is the stream's last revision; -1 for no events.
	last int64
	// at is the fold of the events up to the live document's version.
	at      cart.Cart
	atVer   int64
	updated time.Time
	// required is the version every live document must have reached: the
	// last event at or before the verification's position that can be
	// applied, with all events before it applicable too.
	required int64
	// stuck is the revision of the first event that cannot be applied
	// (-1: none), why, and whether it is at or before that position.
	stuck       int64
	stuckErr    error
	stuckBefore bool
}

// readLog folds the user's stream for a live document at liveVersion.
func (s *Service) readLog(ctx context.Context, userID string, liveVersion int64, upTo *eventlog.Position) (logView, error) {
	recs, err := s.cfg.Events.ReadStream(ctx, userID, 0, 0)
	if err != nil {
		return logView{}, err
	}
	v := logView{last: -1, atVer: -1, required: -1, stuck: -1}
	dec := s.cfg.Live.Template().Decode
	for _, r := range recs {
		v.last = r.Revision
		if v.stuck >= 0 {
			continue // nothing applies after an event that cannot be applied
		}

		before := upTo != nil && !upTo.Less(r.Position)
		e, err := projection.DecodeEvent(dec, r)
		if err != nil {
			v.stuck, v.stuckErr, v.stuckBefore = r.Revision, err, before
			continue
		}
		if r.Revision <= liveVersion {
			v.at, v.atVer, v.updated = v.at.Apply(e), r.Revision, r.Created
		}
		if before {
			v.required = r.Revision
		}
	}
	return v, nil
}

// judge decides, from the user's stream, whether a live document that
// differs from the replay (or is missing from either) is wrong, and how.
// A difference explained by events after the verification's position is
// not one: the live projector may simply have moved on, or not yet.
func (s *Service) judge(ctx context.Context, userID string, live, replay *projection.CartDoc, upTo *eventlog.Position) (*Difference, error) {
	diff := Difference{UserID: userID, LiveVersion: -1, ReplayVersion: -1}
	if live != nil {
		diff.LiveVersion = live.Version
	}
	if replay != nil {
		diff.ReplayVersion = replay.Version
	}
	v, err := s.readLog(ctx, userID, diff.LiveVersion, upTo)
	if err != nil {
		return nil, fmt.Errorf("judge %s: %w", userID, err)
	}
	var found []string
	switch {
	case live == nil:
		switch {
		case v.required >= 0:
			found = append(found, fmt.Sprintf("missing: the log had version %d before the verification", v.required))
		case v.stuck == 0 && v.stuckBefore:
			found = append(found, fmt.Sprintf("missing: the first event cannot be applied (%v), so the cart must show as stale", v.stuckErr))
		}
	case live.Version > v.last:
		found = append(found, fmt.Sprintf("version %d is past the log's last version %d", live.Version, v.last))
	case v.stuck >= 0 && live.Version >= v.stuck:
		found = append(found, fmt.Sprintf("version %d is past event %d, which cannot be applied (%v)", live.Version, v.stuck, v.stuckErr))
	default:
		if live.Version < v.required {
			found = append(found, fmt.Sprintf("behind: version %d, the log had version %d before the verification", live.Version, v.required))
		}
		found = append(found, describeItems(live.Cart, v.at)...)
		if live.Version >= 0 && !live.UpdatedAt.Truncate(time.Millisecond).Equal(v.updated.Truncate(time.Millisecond)) {
			found = append(found, fmt.Sprintf("updated_at: live %s, replay %s",
				live.UpdatedAt.UTC().Format(time.RFC3339Nano), v.updated.UTC().Format(time.RFC3339Nano)))
		}
		next := live.Version + 1
		switch {
		case live.Stale && v.stuck != next:
			found = append(found, fmt.Sprintf("stale: live true, replay false (event %d applies)", next))
		case !live.Stale && v.stuck == next && v.stuckBefore:
			found = append(found, fmt.Sprintf("stale: live false, replay true (event %d cannot be applied: %v)", next, v.stuckErr))
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	diff.Summary = strings.Join(found, "; ")
	return &diff, nil
}

// describeItems lists how a live cart's lines differ from the replay's.
func describeItems(live, replay cart.Cart) []string {
	var out []string
	for _, want := range replay.Items {
		got, ok := live.Item(want.ProductID)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("item %s: missing, replay quantity %d", want.ProductID, want.Quantity))
		default:
			if got.Quantity != want.Quantity {
				out = append(out, fmt.Sprintf("item %s quantity: live %d, replay %d", want.ProductID, got.Quantity, want.Quantity))
			}
			if got.UnitPrice != want.UnitPrice {
				out = append(out, fmt.Sprintf("item %s unit price: live %s, replay %s", want.ProductID, got.UnitPrice, want.UnitPrice))
			}
		}
	}
	for _, got := range live.Items {
		if _, ok := replay.Item(got.ProductID); !ok {
			out = append(out, fmt.Sprintf("item %s: not in replay, live quantity %d", got.ProductID, got.Quantity))
		}
	}
	if len(out) == 0 && !slices.Equal(live.Items, replay.Items) {
		out = append(out, fmt.Sprintf("item order: live %v, replay %v", productIDs(live), productIDs(replay)))
	}
	return out
}

func productIDs(c cart.Cart) []string {
	ids := make([]string, len(c.Items))
	for i, it := range c.Items {
		ids[i] = it.ProductID
	}
	return ids
}
