package standin

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Metadata keys and content types of proposed and recorded events.
const (
	metaType        = "type"
	metaContentType = "content-type"
	metaCreated     = "created"
	contentJSON     = "application/json"
	contentOctets   = "application/octet-stream"
)

// defaultMaxAppendSize is the server's default MaxAppendSize (1 MiB).
const defaultMaxAppendSize = 1 << 20

// streamsService implements the Streams gRPC service. BatchAppend, which the
// v4 client never calls, stays Unimplemented.
type streamsService struct {
	api.UnimplementedStreamsServer
	store         *store
	subs          *subscriptionControl
	maxAppendSize int
}

var _ api.StreamsServer = (*streamsService)(nil)

// Append reads the options message, then every proposed message, and writes
// them atomically. A wrong expected version is a normal reply, not an error.
func (s *streamsService) Append(srv api.Streams_AppendServer) error {
	ctx := srv.Context()
	first, err := srv.Recv()
	if errors.Is(err, io.EOF) {
		return invalidArgument("append: no options message")
	}
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return invalidArgument("append: the first message must carry the options")
	}
	name, err := streamName(opts.GetStreamIdentifier())
	if err != nil {
		return err
	}
	var expected int64
	switch v := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		expected = expectedRevision(v.Revision)
	case *api.AppendReq_Options_NoStream:
		expected = expectNoStream
	case *api.AppendReq_Options_Any:
		expected = expectAny
	case *api.AppendReq_Options_StreamExists:
		expected = expectStreamExists
	default:
		return invalidArgument("append: expected_stream_revision is required")
	}

	var events []proposedEvent
	size := 0
	for {
		msg, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := msg.GetProposedMessage()
		if pm == nil {
			return invalidArgument("append: only the first message may carry options")
		}
		typ, hasType := pm.GetMetadata()[metaType]
		if !hasType {
			return missingMetadata(ctx, metaType)
		}
		contentType, hasContentType := pm.GetMetadata()[metaContentType]
		if !hasContentType {
			return missingMetadata(ctx, metaContentType)
		}
		id, err := uuidFromProto(pm.GetId())
		if err != nil {
			return invalidArgument("append: event id: %v", err)
		}
		// An approximation of the server's Event.SizeOnDisk.
		size += len(pm.GetData()) + len(pm.GetCustomMetadata()) + 2*len(typ)
		if size > s.maxAppendSize {
			return failWith(ctx, codes.InvalidArgument,
				"Maximum Append Size of "+strconv.Itoa(s.maxAppendSize)+" Exceeded.",
				trailerException, exMaxAppendSize, trailerMaxAppendSize, strconv.Itoa(s.maxAppendSize))
		}
		events = append(events, proposedEvent{
			id: id, typ: typ, json: contentType == contentJSON,
			data: nonNil(pm.GetData()), meta: nonNil(pm.GetCustomMetadata()),
		})
	}

	out, err := s.store.append(name, expected, events)
	if err != nil {
		return storeStatus(ctx, "Append", err)
	}
	resp := &api.AppendResp{}
	if out.wrongVersion {
		resp.Result = &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrongVersionReply(opts, expected, out.current)}
		return srv.SendAndClose(resp)
	}
	success := &api.AppendResp_Success{}
	if out.current < 0 {
		success.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		success.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(out.current)}
	}
	if out.hasPos {
		success.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
			CommitPosition: out.pos, PreparePosition: out.pos,
		}}
	} else {
		success.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	}
	resp.Result = &api.AppendResp_Success_{Success: success}
	return srv.SendAndClose(resp)
}

// wrongVersionReply fills both the current fields and the legacy 20.6.0 ones,
// exactly as Streams.Append.cs does (including no_stream being reported in
// the legacy expected field as revision 2^64-1).
func wrongVersionReply(opts *api.AppendReq_Options, expected, current int64) *api.AppendResp_WrongExpectedVersion {
	w := &api.AppendResp_WrongExpectedVersion{}
	switch opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Any:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
	case *api.AppendReq_Options_StreamExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
	case *api.AppendReq_Options_NoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: math.MaxUint64}
	default:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(expected)}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: uint64(expected)}
	}
	if current < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(current)}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(current)}
	}
	return w
}

func missingMetadata(ctx context.Context, key string) error {
	return failWith(ctx, codes.InvalidArgument, "Required Metadata Property '"+key+"' is missing",
		trailerException, exMissingRequiredMeta, trailerRequiredMeta, metaType+","+metaContentType)
}

// Delete soft-deletes a stream. A wrong expected version is an error here.
func (s *streamsService) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	opts := req.GetOptions()
	name, err := streamName(opts.GetStreamIdentifier())
	if err != nil {
		return nil, err
	}
	var expected int64
	switch v := opts.GetExpectedStreamRevision().(type) {
	case *api.DeleteReq_Options_Revision:
		expected = expectedRevision(v.Revision)
	case *api.DeleteReq_Options_NoStream:
		expected = expectNoStream
	case *api.DeleteReq_Options_Any:
		expected = expectAny
	case *api.DeleteReq_Options_StreamExists:
		expected = expectStreamExists
	default:
		return nil, invalidArgument("delete: expected_stream_revision is required")
	}
	pos, err := s.store.delete(name, expected, false)
	if err != nil {
		return nil, storeStatus(ctx, "Delete", err)
	}
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{
		CommitPosition: pos, PreparePosition: pos,
	}}}, nil
}

// Tombstone deletes a stream for good.
func (s *streamsService) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	opts := req.GetOptions()
	name, err := streamName(opts.GetStreamIdentifier())
	if err != nil {
		return nil, err
	}
	var expected int64
	switch v := opts.GetExpectedStreamRevision().(type) {
	case *api.TombstoneReq_Options_Revision:
		expected = expectedRevision(v.Revision)
	case *api.TombstoneReq_Options_NoStream:
		expected = expectNoStream
	case *api.TombstoneReq_Options_Any:
		expected = expectAny
	case *api.TombstoneReq_Options_StreamExists:
		expected = expectStreamExists
	default:
		return nil, invalidArgument("tombstone: expected_stream_revision is required")
	}
	pos, err := s.store.delete(name, expected, true)
	if err != nil {
		return nil, storeStatus(ctx, "Delete", err)
	}
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{
		CommitPosition: pos, PreparePosition: pos,
	}}}, nil
}

// Read serves plain reads (count) and subscriptions.
func (s *streamsService) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	opts := req.GetOptions()
	if opts == nil {
		return invalidArgument("read: options are required")
	}
	if opts.GetUuidOption() == nil {
		return invalidArgument("'uuidOption' is a required argument")
	}
	enc := encoder{stringIDs: opts.GetUuidOption().GetString_() != nil}
	forwards := opts.GetReadDirection() == api.ReadReq_Options_Forwards

	var filter *eventFilter
	if f := opts.GetFilter(); f != nil {
		if opts.GetStream() != nil {
			return invalidArgument("read: filters apply to $all only")
		}
		var err error
		if filter, err = newEventFilter(f); err != nil {
			return invalidArgument("read: %v", err)
		}
	}

	switch count := opts.GetCountOption().(type) {
	case *api.ReadReq_Options_Count:
		return s.read(srv, opts, forwards, filter, count.Count, enc)
	case *api.ReadReq_Options_Subscription:
		if !forwards {
			return invalidArgument("read: subscriptions read forwards only")
		}
		if so := opts.GetStream(); so != nil {
			name, err := streamName(so.GetStreamIdentifier())
			if err != nil {
				return err
			}
			return s.subs.subscribeStream(srv, name, subscriptionStart(so), enc)
		}
		ao := opts.GetAll()
		if ao == nil {
			return invalidArgument("read: stream or all options are required")
		}
		var interval uint64
		if f := opts.GetFilter(); f != nil {
			window := uint64(f.GetMax())
			if f.GetCount() != nil || window == 0 {
				window = 32 // the server's DefaultReadBatchSize
			}
			if f.GetCheckpointIntervalMultiplier() == 0 {
				return invalidArgument("read: checkpointIntervalMultiplier must be positive")
			}
			interval = window * uint64(f.GetCheckpointIntervalMultiplier())
		}
		return s.subs.subscribeAll(srv, allStart(ao), filter, interval, enc)
	default:
		return invalidArgument("read: count or subscription is required")
	}
}

func (s *streamsService) read(srv api.Streams_ReadServer, opts *api.ReadReq_Options, forwards bool, filter *eventFilter, count uint64, enc encoder) error {
	if so := opts.GetStream(); so != nil {
		name, err := streamName(so.GetStreamIdentifier())
		if err != nil {
			return err
		}
		var from revisionFrom
		switch v := so.GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_Start:
			from.start = true
		case *api.ReadReq_Options_StreamOptions_End:
			from.end = true
		case *api.ReadReq_Options_StreamOptions_Revision:
			from.revision = v.Revision
		default:
			return invalidArgument("read: revision_option is required")
		}
		recs, st := s.store.readStream(name, forwards, from, count)
		switch st {
		case readNoStream:
			return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
				StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
			}}})
		case readDeleted:
			return streamDeletedStatus(srv.Context(), name)
		}
		return sendEvents(srv, recs, enc)
	}
	ao := opts.GetAll()
	if ao == nil {
		return invalidArgument("read: stream or all options are required")
	}
	var from allFrom
	switch v := ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		from.start = true
	case *api.ReadReq_Options_AllOptions_End:
		from.end = true
	case *api.ReadReq_Options_AllOptions_Position:
		from.pos = v.Position.GetCommitPosition()
	default:
		return invalidArgument("read: all_option is required")
	}
	return sendEvents(srv, s.store.readAll(forwards, from, count, filter.allow), enc)
}

func sendEvents(srv api.Streams_ReadServer, recs []*record, enc encoder) error {
	for _, r := range recs {
		if err := srv.Send(enc.event(r)); err != nil {
			return err
		}
	}
	return nil
}

// encoder turns records into ReadResp messages in the UUID format the
// client asked for.
type encoder struct{ stringIDs bool }

func (e encoder) event(r *record) *api.ReadResp {
	contentType := contentOctets
	if r.json {
		contentType = contentJSON
	}
	id := &shared.UUID{}
	if e.stringIDs {
		id.Value = &shared.UUID_String_{String_: r.id.String()}
	} else {
		id.Value = &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
			MostSignificantBits:  int64(binary.BigEndian.Uint64(r.id[:8])),
			LeastSignificantBits: int64(binary.BigEndian.Uint64(r.id[8:])),
		}}
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               id,
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.pos,
			CommitPosition:   r.pos,
			Metadata: map[string]string{
				metaType:        r.typ,
				metaContentType: contentType,
				metaCreated:     strconv.FormatInt(r.created, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.pos},
	}}}
}

func streamName(id *shared.StreamIdentifier) (string, error) {
	name := string(id.GetStreamName())
	if name == "" {
		return "", invalidArgument("stream name must not be empty")
	}
	return name, nil
}

// expectedRevision maps a wire revision onto an expected version; revisions
// beyond the int64 range can never match.
func expectedRevision(r uint64) int64 {
	if r >= uint64(deletedStream) {
		return deletedStream - 1
	}
	return int64(r)
}

func uuidFromProto(u *shared.UUID) (uuid.UUID, error) {
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(v.Structured.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(v.Structured.GetLeastSignificantBits()))
		return id, nil
	case *shared.UUID_String_:
		return uuid.Parse(v.String_)
	default:
		return uuid.UUID{}, status.Error(codes.InvalidArgument, "missing id")
	}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
