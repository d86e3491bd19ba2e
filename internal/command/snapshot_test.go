package command_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
)

// toggle alternates a line's quantity so that any number of commands each
// write one event and the cart stays valid.
func toggle(i int) cart.Command {
	return cart.ChangeItemQuantity{ProductID: "a", Quantity: 1 + i%2}
}

func TestSnapshotsBoundTheLoad(t *testing.T) {
	t.Parallel()
	const every = 10
	f := newFixture(command.Options{SnapshotEvery: every})
	f.do(t, command.Envelope{UserID: "u"}, addItem("a", 2))
	for i := range 95 {
		f.do(t, command.Envelope{UserID: "u"}, toggle(i))
	}
	// Every later command reads at most the snapshot's own event plus the
	// events after it: never more than every+1, however long the history.
	snapshots := 0
	for i := range 3 * every {
		f.spy.Reset()
		f.do(t, command.Envelope{UserID: "u"}, toggle(i+1))
		if n := f.spy.EventsRead(); n > every+1 {
			t.Fatalf("command %d read %d events, want at most %d", i, n, every+1)
		}
		snapshots += f.spy.SnapshotWrites()
	}
	if snapshots != 3 {
		t.Fatalf("%d snapshots written in %d commands, want 3", snapshots, 3*every)
	}
}

func TestSnapshotKeepsTheWindowAndTheCart(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{SnapshotEvery: 5})
	early := uuid.NewString()
	first := f.do(t, command.Envelope{UserID: "u", CommandID: early}, addItem("a", 2))
	for i := range 12 {
		f.do(t, command.Envelope{UserID: "u", CommandID: uuid.NewString()}, toggle(i))
	}
	f.do(t, command.Envelope{UserID: "u"}, addItem("b", 7))

	// A new handler (a restart) has no cached state: it starts from the
	// snapshot.
	f.h = command.NewHandler(f.spy, priced(command.Options{SnapshotEvery: 5}))
	f.spy.Reset()
	res := f.do(t, command.Envelope{UserID: "u", CommandID: early}, addItem("a", 2))
	if !res.Duplicate || res.Version != first.Version {
		t.Fatalf("command from before the snapshot: %+v, want recognised with version %d", res, first.Version)
	}
	if n := f.spy.EventsRead(); n > 6 {
		t.Fatalf("read %d events; the snapshot was not used", n)
	}
	// Decisions on the snapshot's state match the full stream's.
	if _, err := f.h.Handle(testCtx(t), command.Envelope{UserID: "u"}, addItem("b", 93)); !errors.Is(err, cart.ErrQuantityLimit) {
		t.Fatalf("adding past the limit on the snapshot state = %v, want ErrQuantityLimit", err)
	}
}

func TestSnapshotWriteFailureDoesNotFailTheCommand(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{SnapshotEvery: 2})
	f.spy.FailSnapshotWrites(errors.New("snapshot store down"))
	for i := range 5 {
		if res := f.do(t, command.Envelope{UserID: "u"}, addItem("a", 1)); res.Version != int64(i) {
			t.Fatalf("command %d: version %d", i, res.Version)
		}
	}
	if f.spy.SnapshotWrites() != 0 {
		t.Fatal("a snapshot was written although writes fail")
	}
	f.spy.FailSnapshotWrites(nil)
	f.do(t, command.Envelope{UserID: "u"}, addItem("a", 1))
	if f.spy.SnapshotWrites() != 1 {
		t.Fatalf("%d snapshots written once writes work again, want 1", f.spy.SnapshotWrites())
	}
}

// A snapshot is a cache: whatever is wrong with it, the cart is loaded from
// the stream and the command is decided on the true state.
func TestUntrustworthySnapshotsAreIgnored(t *testing.T) {
	t.Parallel()
	valid := func(version int64, lastID string, items []cart.Item) map[string]any {
		return map[string]any{"schema": 1, "user_id": "u", "version": version, "last_command_id": lastID,
			"cart": map[string]any{"items": items}, "commands": []any{}}
	}
	lie := []cart.Item{{ProductID: "a", Quantity: 90, UnitPrice: eur(3)}}
	tests := []struct {
		name string
		snap func(lastID string) any
	}{
		{"not an object", func(string) any { return "{" }},
		{"other schema", func(id string) any { s := valid(1, id, lie); s["schema"] = 99; return s }},
		{"other user", func(id string) any { s := valid(1, id, lie); s["user_id"] = "v"; return s }},
		{"version past the stream", func(id string) any { return valid(7, id, lie) }},
		{"another event at its version", func(string) any { return valid(1, uuid.NewString(), lie) }},
		{"broken line", func(id string) any {
			return valid(1, id, []cart.Item{{ProductID: "", Quantity: 1}})
		}},
		{"command entry past its version", func(id string) any {
			s := valid(1, id, lie)
			s["commands"] = []any{map[string]any{"id": "x", "hash": "h", "version": 5}}
			return s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(command.Options{})
			lastID := uuid.NewString()
			f.do(t, command.Envelope{UserID: "u"}, addItem("a", 1))
			f.do(t, command.Envelope{UserID: "u", CommandID: lastID}, addItem("a", 1))
			data, err := json.Marshal(tt.snap(lastID))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.mem.WriteSnapshot(testCtx(t), "u", data); err != nil {
				t.Fatal(err)
			}
			// With the true quantity 2 this is allowed; the lying snapshot's
			// 90 would forbid it. A new handler (a restart) has no cached
			// state, so it reads the snapshot.
			restarted := command.NewHandler(f.spy, priced(command.Options{}))
			res, err := restarted.Handle(testCtx(t), command.Envelope{UserID: "u"}, addItem("a", 10))
			if err != nil || res.Version != 2 {
				t.Fatalf("Handle = %+v, %v; want version 2 decided on the stream", res, err)
			}
			if it, _ := f.cartOf(t, "u").Item("a"); it.Quantity != 12 {
				t.Fatalf("quantity %d, want 12", it.Quantity)
			}
		})
	}
}

func TestSnapshotsDisabled(t *testing.T) {
	t.Parallel()
	f := newFixture(command.Options{SnapshotEvery: -1})
	for i := range 5 {
		f.do(t, command.Envelope{UserID: "u"}, addItem(fmt.Sprint("p", i), 1))
	}
	if f.spy.SnapshotWrites() != 0 {
		t.Fatalf("%d snapshots written with snapshots disabled", f.spy.SnapshotWrites())
	}
}
