package standin

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
)

func TestReadStream(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-read", esdb.NoStream{}, events(5, "E")...) // 0..4

	tests := []struct {
		name  string
		opts  esdb.ReadStreamOptions
		count uint64
		want  []uint64
	}{
		{"forwards from start", esdb.ReadStreamOptions{}, 10, []uint64{0, 1, 2, 3, 4}},
		{"forwards counted", esdb.ReadStreamOptions{From: esdb.Start{}}, 2, []uint64{0, 1}},
		{"forwards from revision", esdb.ReadStreamOptions{From: esdb.Revision(3)}, 10, []uint64{3, 4}},
		{"forwards from past the end", esdb.ReadStreamOptions{From: esdb.Revision(9)}, 10, nil},
		{"forwards from end", esdb.ReadStreamOptions{From: esdb.End{}}, 10, nil},
		{"backwards from end", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 10, []uint64{4, 3, 2, 1, 0}},
		{"backwards counted", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 2, []uint64{4, 3}},
		{"backwards from revision", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(2)}, 10, []uint64{2, 1, 0}},
		{"backwards from past the end", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(99)}, 2, []uint64{4, 3}},
		{"backwards from start", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Start{}}, 10, []uint64{0}},
		{"zero count", esdb.ReadStreamOptions{}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readStream(t, c, "cart-read", tt.opts, tt.count)
			if err != nil {
				t.Fatal(err)
			}
			if !equalSlices(revisions(got), tt.want) {
				t.Fatalf("revisions = %v, want %v", revisions(got), tt.want)
			}
		})
	}
}

func TestReadMissingStream(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	for _, dir := range []esdb.Direction{esdb.Forwards, esdb.Backwards} {
		_, err := readStream(t, c, "cart-nope", esdb.ReadStreamOptions{Direction: dir}, 10)
		if !isNotFound(err) {
			t.Fatalf("direction %v: err = %v, want ErrorCodeResourceNotFound", dir, err)
		}
	}

	// On the wire: exactly one stream_not_found, then OK. Anything else
	// would make the client panic.
	rs, err := api.NewStreamsClient(rawConn(t, s)).Read(testCtx(t), &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption: &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("cart-nope")},
			RevisionOption:   &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption:  &api.ReadReq_Options_Count{Count: 10},
		FilterOption: &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:   &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := rs.Recv()
	if err != nil || string(first.GetStreamNotFound().GetStreamIdentifier().GetStreamName()) != "cart-nope" {
		t.Fatalf("first message = %v, %v; want stream_not_found", first, err)
	}
	if m, err := rs.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("second message = %v, %v; want end of stream", m, err)
	}
}

func TestReadAll(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-a", esdb.NoStream{}, events(2, "E")...)
	mustAppend(t, c, "cart-b", esdb.NoStream{}, events(2, "E")...)
	meta := esdb.StreamMetadata{}
	meta.SetMaxCount(10)
	if _, err := c.SetStreamMetadata(testCtx(t), "cart-a", esdb.AppendToStreamOptions{}, meta); err != nil {
		t.Fatal(err)
	}

	all := readAll(t, c, esdb.ReadAllOptions{}, 100)
	var names []string
	var prev uint64
	for _, e := range all {
		ev := e.OriginalEvent()
		names = append(names, ev.StreamID)
		if ev.Position.Commit <= prev || ev.Position.Commit != ev.Position.Prepare || e.Commit == nil || *e.Commit != ev.Position.Commit {
			t.Fatalf("position %+v (commit %v) after %d: want strictly increasing, commit == prepare", ev.Position, e.Commit, prev)
		}
		prev = ev.Position.Commit
	}
	// $epoch-information is hidden by the default $all filter; the
	// metadata event is an ordinary system event of $all.
	if want := "cart-a,cart-a,cart-b,cart-b,$$cart-a"; strings.Join(names, ",") != want {
		t.Fatalf("$all streams = %v, want %s", names, want)
	}
	if first := all[0].OriginalEvent().Position.Commit; first <= fileHeaderSize+frameHeaderSize+4 {
		t.Fatalf("first user event at %d: the epoch record should come first", first)
	}

	pos := func(i int) esdb.Position { return all[i].OriginalEvent().Position }
	tests := []struct {
		name  string
		opts  esdb.ReadAllOptions
		count uint64
		want  []int // indexes into all
	}{
		{"forwards counted", esdb.ReadAllOptions{From: esdb.Start{}}, 3, []int{0, 1, 2}},
		{"forwards from a position includes it", esdb.ReadAllOptions{From: pos(2)}, 10, []int{2, 3, 4}},
		{"forwards from end", esdb.ReadAllOptions{From: esdb.End{}}, 10, nil},
		{"backwards from end", esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 2, []int{4, 3}},
		{"backwards from a position excludes it", esdb.ReadAllOptions{Direction: esdb.Backwards, From: pos(2)}, 10, []int{1, 0}},
		{"backwards from start", esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.Start{}}, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := readAll(t, c, tt.opts, tt.count)
			if len(got) != len(tt.want) {
				t.Fatalf("read %d events, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].OriginalEvent().Position != all[w].OriginalEvent().Position {
					t.Fatalf("event %d at %+v, want %+v", i, got[i].OriginalEvent().Position, all[w].OriginalEvent().Position)
				}
			}
		})
	}
}

// Reads honour the UUID format requested, although the v4 client always
// asks for the structured one.
func TestReadStringUUIDs(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	ev := jsonEvent("E", `{}`)
	mustAppend(t, c, "cart-uuid", esdb.NoStream{}, ev)
	rs, err := api.NewStreamsClient(rawConn(t, s)).Read(testCtx(t), &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption: &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("cart-uuid")},
			RevisionOption:   &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption:  &api.ReadReq_Options_Count{Count: 1},
		FilterOption: &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:   &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.GetEvent().GetEvent().GetId().GetString_(); got != ev.EventID.String() {
		t.Fatalf("id = %q, want %s", got, ev.EventID)
	}
}

// Filtered $all reads are not used by the v4 client, but the server
// supports them: only the matching events, no checkpoints.
func TestReadAllFiltered(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "order-1", esdb.NoStream{}, jsonEvent("E", `{}`))
	mustAppend(t, c, "cart-fr", esdb.NoStream{}, events(3, "E")...)
	rs, err := api.NewStreamsClient(rawConn(t, s)).Read(testCtx(t), &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption: &api.ReadReq_Options_All{All: &api.ReadReq_Options_AllOptions{
			AllOption: &api.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption: &api.ReadReq_Options_Count{Count: 2},
		FilterOption: &api.ReadReq_Options_Filter{Filter: &api.ReadReq_Options_FilterOptions{
			Filter:                       &api.ReadReq_Options_FilterOptions_StreamIdentifier{StreamIdentifier: &api.ReadReq_Options_FilterOptions_Expression{Prefix: []string{"cart-"}}},
			Window:                       &api.ReadReq_Options_FilterOptions_Max{Max: 32},
			CheckpointIntervalMultiplier: 1,
		}},
		UuidOption: &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for {
		m, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e := m.GetEvent().GetEvent()
		if e == nil || string(e.GetStreamIdentifier().GetStreamName()) != "cart-fr" {
			t.Fatalf("unexpected message %v", m)
		}
		got = append(got, e.GetStreamRevision())
	}
	if !equalSlices(got, []uint64{0, 1}) {
		t.Fatalf("revisions = %v, want [0 1]", got)
	}
}
