package standin

import (
	"strconv"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestSoftDelete(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-soft", esdb.NoStream{}, events(3, "E")...)

	res, err := c.DeleteStream(testCtx(t), "cart-soft", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(2)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Position.Commit == 0 {
		t.Fatalf("delete position = %+v, want > 0", res.Position)
	}
	if _, err := readStream(t, c, "cart-soft", esdb.ReadStreamOptions{}, 10); !isNotFound(err) {
		t.Fatalf("read after delete: %v, want not found", err)
	}
	// stream_exists fails on a soft-deleted stream.
	if _, err := c.AppendToStream(testCtx(t), "cart-soft", esdb.AppendToStreamOptions{ExpectedRevision: esdb.StreamExists{}}, jsonEvent("E", `{}`)); !isWrongVersion(err) {
		t.Fatalf("stream_exists append after delete: %v, want wrong expected version", err)
	}
	// $all keeps the deleted events until a scavenge.
	if n := countStream(readAll(t, c, esdb.ReadAllOptions{}, 100), "cart-soft"); n != 3 {
		t.Fatalf("$all has %d cart-soft events, want 3", n)
	}

	// Writing again re-creates the stream and continues the revisions.
	w := mustAppend(t, c, "cart-soft", esdb.NoStream{}, events(2, "E")...)
	if w.NextExpectedVersion != 4 {
		t.Fatalf("re-created stream at revision %d, want 4", w.NextExpectedVersion)
	}
	got, err := readStream(t, c, "cart-soft", esdb.ReadStreamOptions{}, 10)
	if err != nil || !equalSlices(revisions(got), []uint64{3, 4}) {
		t.Fatalf("read after re-creation = %v, %v; want revisions 3, 4", revisions(got), err)
	}
	meta, err := c.GetStreamMetadata(testCtx(t), "cart-soft", esdb.ReadStreamOptions{})
	if err != nil || meta.TruncateBefore() == nil || *meta.TruncateBefore() != 3 {
		t.Fatalf("metadata after re-creation = %+v, %v; want $tb 3", meta, err)
	}
}

func TestSoftDeleteRecreation(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)

	tests := []struct {
		name     string
		expected esdb.ExpectedRevision
		wantErr  bool
	}{
		{"any", esdb.Any{}, false},
		{"no_stream", esdb.NoStream{}, false},
		{"the last revision", esdb.Revision(1), false},
		{"stream_exists", esdb.StreamExists{}, true},
		{"an older revision", esdb.Revision(0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stream := "cart-recreate-" + tt.name
			mustAppend(t, c, stream, esdb.NoStream{}, events(2, "E")...)
			if _, err := c.DeleteStream(testCtx(t), stream, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
				t.Fatal(err)
			}
			_, err := c.AppendToStream(testCtx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: tt.expected}, jsonEvent("E", `{}`))
			if tt.wantErr {
				if !isWrongVersion(err) {
					t.Fatalf("append: %v, want wrong expected version", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := readStream(t, c, stream, esdb.ReadStreamOptions{}, 10); !equalSlices(revisions(got), []uint64{2}) {
				t.Fatalf("revisions = %v, want [2]", revisions(got))
			}
		})
	}
}

func TestDeleteErrors(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	streams := api.NewStreamsClient(rawConn(t, s))
	mustAppend(t, c, "cart-del", esdb.NoStream{}, events(2, "E")...)

	tests := []struct {
		name       string
		stream     string
		revision   *uint64 // nil = any
		hard       bool
		wantActual string
	}{
		{"soft, wrong revision", "cart-del", ptr(uint64(5)), false, "1"},
		{"hard, wrong revision", "cart-del", ptr(uint64(0)), true, "1"},
		// The server refuses to soft delete a stream with neither events nor
		// metadata, whatever the expected version.
		{"soft, missing stream", "cart-never", nil, false, "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var trailer metadata.MD
			var err error
			id := &shared.StreamIdentifier{StreamName: []byte(tt.stream)}
			expected := "-2"
			if tt.hard {
				opts := &api.TombstoneReq_Options{StreamIdentifier: id, ExpectedStreamRevision: &api.TombstoneReq_Options_Any{Any: &shared.Empty{}}}
				if tt.revision != nil {
					opts.ExpectedStreamRevision = &api.TombstoneReq_Options_Revision{Revision: *tt.revision}
					expected = strconv.FormatUint(*tt.revision, 10)
				}
				_, err = streams.Tombstone(testCtx(t), &api.TombstoneReq{Options: opts}, grpc.Trailer(&trailer))
			} else {
				opts := &api.DeleteReq_Options{StreamIdentifier: id, ExpectedStreamRevision: &api.DeleteReq_Options_Any{Any: &shared.Empty{}}}
				if tt.revision != nil {
					opts.ExpectedStreamRevision = &api.DeleteReq_Options_Revision{Revision: *tt.revision}
					expected = strconv.FormatUint(*tt.revision, 10)
				}
				_, err = streams.Delete(testCtx(t), &api.DeleteReq{Options: opts}, grpc.Trailer(&trailer))
			}
			if status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("err = %v, want FailedPrecondition", err)
			}
			want := map[string]string{"exception": "wrong-expected-version", "stream-name": tt.stream, "expected-version": expected, "actual-version": tt.wantActual}
			for k, v := range want {
				if got := trailer.Get(k); len(got) != 1 || got[0] != v {
					t.Errorf("trailer %s = %v, want %s", k, got, v)
				}
			}
		})
	}

	// The v4 client does not map this status to a code of its own.
	_, err := c.DeleteStream(testCtx(t), "cart-del", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(9)})
	if code, ok := errorCode(err); !ok || code != esdb.ErrorCodeUnknown {
		t.Fatalf("client delete error = %v, want ErrorCodeUnknown", err)
	}
}

func TestTombstone(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-tomb", esdb.NoStream{}, events(2, "E")...)
	res, err := c.TombstoneStream(testCtx(t), "cart-tomb", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(1)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Position.Commit == 0 {
		t.Fatalf("tombstone position = %+v, want > 0", res.Position)
	}

	isDeleted := func(what string, err error) {
		t.Helper()
		if code, _ := errorCode(err); code != esdb.ErrorCodeStreamDeleted {
			t.Errorf("%s: %v, want ErrorCodeStreamDeleted", what, err)
		}
	}
	_, err = readStream(t, c, "cart-tomb", esdb.ReadStreamOptions{}, 10)
	isDeleted("read", err)
	_, err = readStream(t, c, "cart-tomb", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 10)
	isDeleted("read backwards", err)
	for _, expected := range []esdb.ExpectedRevision{esdb.Any{}, esdb.NoStream{}, esdb.Revision(1)} {
		_, err = c.AppendToStream(testCtx(t), "cart-tomb", esdb.AppendToStreamOptions{ExpectedRevision: expected}, jsonEvent("E", `{}`))
		isDeleted("append", err)
	}
	_, err = c.DeleteStream(testCtx(t), "cart-tomb", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}})
	isDeleted("delete", err)
	_, err = c.TombstoneStream(testCtx(t), "cart-tomb", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}})
	isDeleted("tombstone again", err)
	meta := esdb.StreamMetadata{}
	meta.SetMaxCount(1)
	_, err = c.SetStreamMetadata(testCtx(t), "cart-tomb", esdb.AppendToStreamOptions{}, meta)
	isDeleted("set metadata", err)

	// $all shows the events and the tombstone record.
	var tomb *esdb.RecordedEvent
	for _, e := range readAll(t, c, esdb.ReadAllOptions{}, 100) {
		if e.OriginalEvent().EventType == "$streamDeleted" {
			tomb = e.OriginalEvent()
		}
	}
	if tomb == nil || tomb.StreamID != "cart-tomb" || tomb.EventNumber != 1<<63-1 || tomb.Position != res.Position {
		t.Fatalf("tombstone record = %+v, want cart-tomb@MaxInt64 at %+v", tomb, res.Position)
	}

	// A stream that never existed can be tombstoned.
	if _, err := c.TombstoneStream(testCtx(t), "cart-tomb-new", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.NoStream{}}); err != nil {
		t.Fatal(err)
	}
	_, err = readStream(t, c, "cart-tomb-new", esdb.ReadStreamOptions{}, 1)
	isDeleted("read a tombstoned new stream", err)
}

func isWrongVersion(err error) bool {
	code, ok := errorCode(err)
	return ok && code == esdb.ErrorCodeWrongExpectedVersion
}

func countStream(evs []*esdb.ResolvedEvent, stream string) int {
	n := 0
	for _, e := range evs {
		if e.OriginalEvent().StreamID == stream {
			n++
		}
	}
	return n
}

func ptr[T any](v T) *T { return &v }
