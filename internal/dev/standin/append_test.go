package standin

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestAppendReadRoundTrip(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 3, 4, 5, 6, 7, 800, time.UTC)
	s := Start(t, withClock(func() time.Time { return created }))
	c := newClient(t, s)

	in := []esdb.EventData{
		{EventID: uuid.New(), EventType: "ItemAdded", ContentType: esdb.ContentTypeJson, Data: []byte(`{"sku":"a"}`), Metadata: []byte(`{"cmd":"1"}`)},
		{EventID: uuid.New(), EventType: "Blob", ContentType: esdb.ContentTypeBinary, Data: []byte{0, 1, 2}},
		{EventID: uuid.New(), EventType: "Empty", ContentType: esdb.ContentTypeJson},
	}
	res := mustAppend(t, c, "cart-rt", esdb.NoStream{}, in...)
	got, err := readStream(t, c, "cart-rt", esdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("read %d events, want %d", len(got), len(in))
	}
	var prev uint64
	for i, g := range got {
		e := g.OriginalEvent()
		want := in[i]
		wantContent := "application/octet-stream"
		if want.ContentType == esdb.ContentTypeJson {
			wantContent = "application/json"
		}
		if e.EventID != want.EventID || e.EventType != want.EventType || e.ContentType != wantContent ||
			!bytes.Equal(e.Data, want.Data) || !bytes.Equal(e.UserMetadata, want.Metadata) ||
			e.StreamID != "cart-rt" || e.EventNumber != uint64(i) {
			t.Errorf("event %d = %+v, want %+v", i, e, want)
		}
		if !e.CreatedDate.Equal(created.Truncate(100 * time.Nanosecond)) {
			t.Errorf("event %d created %v, want %v", i, e.CreatedDate, created)
		}
		if e.Position.Commit == 0 || e.Position.Commit != e.Position.Prepare || e.Position.Commit <= prev {
			t.Errorf("event %d position %+v after %d: want commit == prepare, increasing, > 0", i, e.Position, prev)
		}
		if g.Commit == nil || *g.Commit != e.Position.Commit {
			t.Errorf("event %d: resolved commit position %v, want %d", i, g.Commit, e.Position.Commit)
		}
		prev = e.Position.Commit
		if sys := e.SystemMetadata; len(sys) != 3 || sys["created"] == "" {
			t.Errorf("event %d system metadata = %v, want type, content-type and created only", i, sys)
		}
	}
	last := got[len(got)-1].OriginalEvent()
	if res.NextExpectedVersion != 2 || res.CommitPosition != last.Position.Commit || res.PreparePosition != last.Position.Prepare {
		t.Errorf("write result %+v, want revision 2 at the last event's position %+v", res, last.Position)
	}
}

func TestAppendExpectedRevision(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)

	tests := []struct {
		name     string
		exists   bool // the stream holds revisions 0..2 before the append
		expected esdb.ExpectedRevision
		wantErr  string // "" = success
	}{
		{"any on missing stream", false, esdb.Any{}, ""},
		{"any on existing stream", true, esdb.Any{}, ""},
		{"no_stream on missing stream", false, esdb.NoStream{}, ""},
		{"no_stream on existing stream", true, esdb.NoStream{}, "expecting 'no_stream' but got '2'"},
		{"stream_exists on missing stream", false, esdb.StreamExists{}, "expecting 'stream_exists' but got 'no_stream'"},
		{"stream_exists on existing stream", true, esdb.StreamExists{}, ""},
		{"exact on existing stream", true, esdb.Revision(2), ""},
		{"exact behind current", true, esdb.Revision(1), "expecting '1' but got '2'"},
		{"exact ahead of current", true, esdb.Revision(7), "expecting '7' but got '2'"},
		{"exact on missing stream", false, esdb.Revision(0), "expecting '0' but got 'no_stream'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stream := "cart-ev-" + strings.ReplaceAll(tt.name, " ", "-")
			if tt.exists {
				mustAppend(t, c, stream, esdb.NoStream{}, events(3, "E")...)
			}
			res, err := c.AppendToStream(testCtx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: tt.expected}, jsonEvent("E", `{}`))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				want := uint64(0)
				if tt.exists {
					want = 3
				}
				if res.NextExpectedVersion != want {
					t.Fatalf("next expected version = %d, want %d", res.NextExpectedVersion, want)
				}
				return
			}
			if code, _ := errorCode(err); code != esdb.ErrorCodeWrongExpectedVersion || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("append error = %v, want ErrorCodeWrongExpectedVersion with %q", err, tt.wantErr)
			}
		})
	}
}

// The wrong-expected-version reply carries the legacy 20.6.0 fields too,
// exactly as the server fills them.
func TestAppendWrongExpectedVersionReply(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	mustAppend(t, c, "cart-wev", esdb.NoStream{}, events(2, "E")...)
	streams := api.NewStreamsClient(rawConn(t, s))

	tests := []struct {
		name   string
		stream string
		opts   *api.AppendReq_Options
		check  func(*api.AppendResp_WrongExpectedVersion) bool
	}{
		{"no_stream", "cart-wev", &api.AppendReq_Options{ExpectedStreamRevision: &api.AppendReq_Options_NoStream{NoStream: &shared.Empty{}}},
			func(w *api.AppendResp_WrongExpectedVersion) bool {
				return w.GetExpectedNoStream() != nil && w.GetExpectedRevision_20_6_0() == ^uint64(0) &&
					w.GetCurrentRevision() == 1 && w.GetCurrentRevision_20_6_0() == 1
			}},
		{"exact", "cart-wev", &api.AppendReq_Options{ExpectedStreamRevision: &api.AppendReq_Options_Revision{Revision: 5}},
			func(w *api.AppendResp_WrongExpectedVersion) bool {
				return w.GetExpectedRevision() == 5 && w.GetExpectedRevision_20_6_0() == 5 && w.GetCurrentRevision() == 1
			}},
		{"stream_exists", "cart-none", &api.AppendReq_Options{ExpectedStreamRevision: &api.AppendReq_Options_StreamExists{StreamExists: &shared.Empty{}}},
			func(w *api.AppendResp_WrongExpectedVersion) bool {
				return w.GetExpectedStreamExists() != nil && w.GetStreamExists_20_6_0() != nil &&
					w.GetCurrentNoStream() != nil && w.GetNoStream_20_6_0() != nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.StreamIdentifier = &shared.StreamIdentifier{StreamName: []byte(tt.stream)}
			resp, err := rawAppend(testCtx(t), streams, tt.opts, proposed("E", map[string]string{"type": "E", "content-type": "application/json"}))
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			w := resp.GetWrongExpectedVersion()
			if w == nil || !tt.check(w) {
				t.Fatalf("reply = %v", resp)
			}
		})
	}
}

func TestAppendIdempotence(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)

	tests := []struct {
		name     string
		first    esdb.ExpectedRevision
		retry    esdb.ExpectedRevision
		mutate   func(batch []esdb.EventData) []esdb.EventData // nil = identical retry
		wantErr  bool
		wantRevs []uint64
	}{
		{name: "exact revision retry", first: esdb.Revision(1), retry: esdb.Revision(1), wantRevs: []uint64{0, 1, 2, 3}},
		{name: "any retry", first: esdb.Any{}, retry: esdb.Any{}, wantRevs: []uint64{0, 1, 2, 3}},
		{name: "stream_exists retry", first: esdb.StreamExists{}, retry: esdb.StreamExists{}, wantRevs: []uint64{0, 1, 2, 3}},
		{name: "retry with any after exact", first: esdb.Revision(1), retry: esdb.Any{}, wantRevs: []uint64{0, 1, 2, 3}},
		{name: "partial overlap is a conflict", first: esdb.Revision(1), retry: esdb.Revision(1),
			mutate: func(b []esdb.EventData) []esdb.EventData {
				return []esdb.EventData{b[0], jsonEvent("E", `{}`)}
			}, wantErr: true, wantRevs: []uint64{0, 1, 2, 3}},
		{name: "new ids at an old revision is a conflict", first: esdb.Revision(1), retry: esdb.Revision(1),
			mutate: func([]esdb.EventData) []esdb.EventData { return events(2, "E") }, wantErr: true, wantRevs: []uint64{0, 1, 2, 3}},
		{name: "any with a new first id appends", first: esdb.Any{}, retry: esdb.Any{},
			mutate: func(b []esdb.EventData) []esdb.EventData {
				return []esdb.EventData{jsonEvent("E", `{}`), b[1]}
			}, wantRevs: []uint64{0, 1, 2, 3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stream := "cart-idem-" + strings.ReplaceAll(tt.name, " ", "-")
			mustAppend(t, c, stream, esdb.NoStream{}, events(2, "E")...)
			batch := events(2, "E")
			first := mustAppend(t, c, stream, tt.first, batch...)
			retryBatch := batch
			if tt.mutate != nil {
				retryBatch = tt.mutate(batch)
			}
			res, err := c.AppendToStream(testCtx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: tt.retry}, retryBatch...)
			switch {
			case tt.wantErr:
				if code, _ := errorCode(err); code != esdb.ErrorCodeWrongExpectedVersion {
					t.Fatalf("retry error = %v, want wrong expected version", err)
				}
			case err != nil:
				t.Fatalf("retry: %v", err)
			case tt.mutate == nil && (*res != *first):
				t.Fatalf("idempotent retry result %+v, want the original %+v", res, first)
			}
			got, err := readStream(t, c, stream, esdb.ReadStreamOptions{}, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !equalSlices(revisions(got), tt.wantRevs) {
				t.Fatalf("stream revisions = %v, want %v", revisions(got), tt.wantRevs)
			}
		})
	}
}

func TestAppendNoStreamRetryIsIdempotent(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := newClient(t, s)
	batch := events(3, "E")
	first := mustAppend(t, c, "cart-ns-retry", esdb.NoStream{}, batch...)
	again := mustAppend(t, c, "cart-ns-retry", esdb.NoStream{}, batch...)
	if *first != *again {
		t.Fatalf("retry result %+v, want %+v", again, first)
	}
	got, _ := readStream(t, c, "cart-ns-retry", esdb.ReadStreamOptions{}, 10)
	if len(got) != 3 {
		t.Fatalf("stream has %d events, want 3", len(got))
	}
}

func TestAppendValidation(t *testing.T) {
	t.Parallel()
	s := Start(t)
	streams := api.NewStreamsClient(rawConn(t, s))
	opts := func() *api.AppendReq_Options {
		return &api.AppendReq_Options{
			StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte("cart-v")},
			ExpectedStreamRevision: &api.AppendReq_Options_Any{Any: &shared.Empty{}},
		}
	}
	tests := []struct {
		name      string
		opts      *api.AppendReq_Options
		msg       *api.AppendReq_ProposedMessage
		wantCode  codes.Code
		wantTrail string
	}{
		{"missing type", opts(), proposed("E", map[string]string{"content-type": "application/json"}), codes.InvalidArgument, "missing-required-metadata-property"},
		{"missing content-type", opts(), proposed("E", map[string]string{"type": "E"}), codes.InvalidArgument, "missing-required-metadata-property"},
		{"too large", opts(), func() *api.AppendReq_ProposedMessage {
			m := proposed("E", map[string]string{"type": "E", "content-type": "application/octet-stream"})
			m.Data = make([]byte, defaultMaxAppendSize+1)
			return m
		}(), codes.InvalidArgument, "maximum-append-size-exceeded"},
		{"no stream name", &api.AppendReq_Options{ExpectedStreamRevision: &api.AppendReq_Options_Any{Any: &shared.Empty{}}},
			proposed("E", map[string]string{"type": "E", "content-type": "application/json"}), codes.InvalidArgument, ""},
		{"no expected revision", &api.AppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("x")}},
			proposed("E", map[string]string{"type": "E", "content-type": "application/json"}), codes.InvalidArgument, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var trailer metadata.MD
			_, err := rawAppend(testCtx(t), streams, tt.opts, tt.msg, grpc.Trailer(&trailer))
			if status.Code(err) != tt.wantCode {
				t.Fatalf("append error = %v, want %v", err, tt.wantCode)
			}
			if tt.wantTrail != "" && (len(trailer.Get("exception")) != 1 || trailer.Get("exception")[0] != tt.wantTrail) {
				t.Fatalf("trailer = %v, want exception=%s", trailer, tt.wantTrail)
			}
		})
	}
}

func TestAppendNothing(t *testing.T) {
	t.Parallel()
	s := Start(t)
	streams := api.NewStreamsClient(rawConn(t, s))
	resp, err := rawAppend(testCtx(t), streams, &api.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte("cart-empty")},
		ExpectedStreamRevision: &api.AppendReq_Options_NoStream{NoStream: &shared.Empty{}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok := resp.GetSuccess(); ok == nil || ok.GetNoStream() == nil || ok.GetNoPosition() == nil {
		t.Fatalf("reply = %v, want success with no_stream and no_position", resp)
	}
	c := newClient(t, s)
	if _, err := readStream(t, c, "cart-empty", esdb.ReadStreamOptions{}, 1); !isNotFound(err) {
		t.Fatalf("read after empty append: %v, want not found", err)
	}
}

func isNotFound(err error) bool {
	code, ok := errorCode(err)
	return ok && code == esdb.ErrorCodeResourceNotFound
}

func rawConn(tb testing.TB, s *Server) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

func proposed(typ string, meta map[string]string) *api.AppendReq_ProposedMessage {
	id := uuid.New()
	return &api.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}},
		Metadata: meta,
		Data:     []byte(`{"type":"` + typ + `"}`),
	}
}

// rawAppend sends the options and an optional proposed message.
func rawAppend(ctx context.Context, c api.StreamsClient, opts *api.AppendReq_Options, msg *api.AppendReq_ProposedMessage, callOpts ...grpc.CallOption) (*api.AppendResp, error) {
	stream, err := c.Append(ctx, callOpts...)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&api.AppendReq{Content: &api.AppendReq_Options_{Options: opts}}); err != nil {
		return nil, err
	}
	if msg != nil {
		if err := stream.Send(&api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: msg}}); err != nil {
			return stream.CloseAndRecv()
		}
	}
	return stream.CloseAndRecv()
}
