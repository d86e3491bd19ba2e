package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readside"
)

// judgeService is a Service with only what judge needs: the log and a
// decoder.
func judgeService(t *testing.T, log *fakeLog) *Service {
	t.Helper()
	live, err := readside.New(readside.Config{
		Catalog: failingCatalog{}, Open: func(string) readside.CartStore { return nil },
		Projection: projection.Config{Source: log},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Service{cfg: Config{Live: live, Events: log}}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	// The log: u1 has 3 events, the verification saw the first 2 (upTo);
	// u2 has a poison event at revision 1 before upTo; u3's only events
	// come after upTo; u4 has a poison event after upTo.
	log := newFakeLog()
	u1 := []eventlog.Event{log.append(t, "u1", add("p1", 1)), log.append(t, "u1", add("p2", 2))}
	log.append(t, "u2", add("p1", 1))
	poison := log.appendRaw(t, "u2", "CouponApplied", []byte(`{}`))
	log.append(t, "u4", add("p1", 1))
	upTo := u1[1].Position
	if upTo.Less(poison.Position) {
		upTo = poison.Position
	}
	log.append(t, "u1", add("p1", 5))
	log.append(t, "u3", add("p1", 1))
	log.appendRaw(t, "u4", "CouponApplied", []byte(`{}`))
	s := judgeService(t, log)

	at := func(user string, version int64) *projection.CartDoc {
		d := projection.CartDoc{UserID: user, Version: -1}
		evs, _ := log.snapshot()
		for _, ev := range evs {
			if ev.UserID != user || ev.Revision > version {
				continue
			}
			e, err := cart.Unmarshal(ev.Type, ev.Data)
			if err != nil {
				t.Fatalf("at(%s, %d): %v", user, version, err)
			}
			d.Cart, d.Version, d.UpdatedAt = d.Cart.Apply(e), ev.Revision, ev.Created
		}
		return &d
	}
	with := func(d *projection.CartDoc, f func(*projection.CartDoc)) *projection.CartDoc {
		c := *d
		c.Cart = c.Cart.Clone()
		f(&c)
		return &c
	}
	stale := func(d *projection.CartDoc) { d.Stale = true }

	tests := []struct {
		name         string
		user         string
		live, replay *projection.CartDoc
		want         []string // substrings of the description; none: no difference
	}{
		{name: "live moved on after the replay", user: "u1", live: at("u1", 2), replay: at("u1", 1)},
		{name: "replay moved on, live has what the replay saw", user: "u1", live: at("u1", 1), replay: at("u1", 2)},
		{name: "live behind what the replay saw", user: "u1", live: at("u1", 0), replay: at("u1", 1),
			want: []string{"behind: version 0, the log had version 1"}},
		{name: "live missing", user: "u1", replay: at("u1", 1), want: []string{"missing: the log had version 1"}},
		{name: "live missing, events only after the verification", user: "u3", replay: at("u3", 0)},
		{name: "quantity", user: "u1", live: with(at("u1", 1), func(d *projection.CartDoc) { d.Cart.Items[1].Quantity = 7 }),
			replay: at("u1", 1), want: []string{"item p2 quantity: live 7, replay 2"}},
		{name: "price", user: "u1", live: with(at("u1", 1), func(d *projection.CartDoc) { d.Cart.Items[0].UnitPrice.Units = 9 }),
			replay: at("u1", 1), want: []string{"item p1 unit price: live 9.500000000 EUR, replay 2.500000000 EUR"}},
		{name: "extra and missing lines", user: "u1",
			live:   with(at("u1", 1), func(d *projection.CartDoc) { d.Cart.Items[1].ProductID = "zz" }),
			replay: at("u1", 1), want: []string{"item p2: missing, replay quantity 2", "item zz: not in replay, live quantity 2"}},
		{name: "line order", user: "u1",
			live: with(at("u1", 1), func(d *projection.CartDoc) {
				d.Cart.Items[0], d.Cart.Items[1] = d.Cart.Items[1], d.Cart.Items[0]
			}),
			replay: at("u1", 1), want: []string{"item order: live [p2 p1], replay [p1 p2]"}},
		{name: "updated_at", user: "u1", live: with(at("u1", 1), func(d *projection.CartDoc) { d.UpdatedAt = d.UpdatedAt.Add(time.Hour) }),
			replay: at("u1", 1), want: []string{"updated_at: live"}},
		{name: "past the log", user: "u1", live: with(at("u1", 2), func(d *projection.CartDoc) { d.Version = 9 }),
			replay: at("u1", 2), want: []string{"version 9 is past the log's last version 2"}},
		{name: "a cart with no events", user: "ghost", live: &projection.CartDoc{UserID: "ghost", Version: 0},
			want: []string{"version 0 is past the log's last version -1"}},
		{name: "stale at the poison event", user: "u2", live: with(at("u2", 0), stale), replay: with(at("u2", 0), stale)},
		{name: "stale though the next event applies", user: "u1", live: with(at("u1", 1), stale), replay: at("u1", 1),
			want: []string{"stale: live true, replay false (event 2 applies)"}},
		{name: "not stale though the next event is poison", user: "u2", live: at("u2", 0), replay: with(at("u2", 0), stale),
			want: []string{"stale: live false, replay true (event 1 cannot be applied"}},
		{name: "poison after the verification: not stale yet is fine", user: "u4", live: at("u4", 0), replay: at("u4", 0)},
		{name: "past a poison event", user: "u2", live: with(at("u2", 0), func(d *projection.CartDoc) { d.Version = 1 }),
			replay: with(at("u2", 0), stale), want: []string{"version 1 is past event 1, which cannot be applied"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.judge(ctxT(t), tt.user, tt.live, tt.replay, &upTo)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.want) == 0 {
				if got != nil {
					t.Fatalf("difference %+v, want none", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("no difference, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(got.Summary, w) {
					t.Errorf("description %q lacks %q", got.Summary, w)
				}
			}
			wantLive, wantReplay := int64(-1), int64(-1)
			if tt.live != nil {
				wantLive = tt.live.Version
			}
			if tt.replay != nil {
				wantReplay = tt.replay.Version
			}
			if got.UserID != tt.user || got.LiveVersion != wantLive || got.ReplayVersion != wantReplay {
				t.Errorf("difference %+v, want user %s, live %d, replay %d", got, tt.user, wantLive, wantReplay)
			}
		})
	}
}

func TestSameDoc(t *testing.T) {
	t.Parallel()
	base := projection.CartDoc{UserID: "u", Version: 2, UpdatedAt: time.UnixMilli(1700000000123).Add(456 * time.Microsecond),
		Cart: cart.Cart{Items: []cart.Item{{ProductID: "p", Quantity: 1}}}}
	same := base
	same.UpdatedAt = base.UpdatedAt.Truncate(time.Millisecond) // as stored
	same.StaleReason = "prose differs"
	if !sameDoc(base, same) {
		t.Error("documents equal up to stored precision and reason differ")
	}
	other := base
	other.Stale = true
	if sameDoc(base, other) {
		t.Error("stale flag ignored")
	}
}
