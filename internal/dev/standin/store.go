package standin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

// store is the event store: an append-only log of records plus per-stream
// indexes, optionally backed by a log file.
//
// Locking: writers (append, delete, epoch) are serialised by wmu for the
// whole decide → persist → publish sequence, so the decision is made on the
// state the write is applied to. Only writers mutate, so a writer may read the
// state without mu. Publishing takes mu briefly; readers hold mu.RLock only to
// copy slice headers and metadata, then work on immutable records without
// any lock, so neither side blocks the other for long (readers never wait for
// an fsync).
type store struct {
	wmu    sync.Mutex
	ids    map[uuid.UUID]eventRef // idempotence index; writers only
	wal    *wal                   // nil in memory mode
	broken error                  // set when the log can no longer be written; writers only
	now    func() time.Time
	logger *slog.Logger

	mu      sync.RWMutex
	log     []*record // every record in $all order
	streams map[string]*stream
	head    uint64        // position of the next frame
	changed chan struct{} // closed and replaced on every commit
}

type stream struct {
	events    []*record // events[i].revision == i; append-only
	tombstone *record
	meta      streamMeta // from this stream's $$ stream
}

type eventRef struct {
	stream   string
	revision int64
}

// Errors the gRPC layer maps onto the server's status codes and trailers.
var errUnavailable = errors.New("the event log cannot be written")

type streamDeletedError struct{ stream string }

func (e streamDeletedError) Error() string {
	return fmt.Sprintf("Event stream '%s' is deleted.", e.stream)
}

type wrongVersionError struct {
	stream           string
	expected, actual int64
}

func (e wrongVersionError) Error() string {
	return fmt.Sprintf("WrongExpectedVersion. Stream: %s, Expected version: %d, Actual version: %d", e.stream, e.expected, e.actual)
}

func newStore(dataDir string, now func() time.Time, logger *slog.Logger) (*store, error) {
	s := &store{
		ids:     make(map[uuid.UUID]eventRef),
		now:     now,
		logger:  logger,
		streams: make(map[string]*stream),
		head:    fileHeaderSize,
		changed: make(chan struct{}),
	}
	if dataDir != "" {
		w, frames, err := openWAL(dataDir, logger)
		if err != nil {
			return nil, err
		}
		s.wal = w
		for _, f := range frames {
			if err := s.apply(f.recs); err != nil {
				_ = w.close()
				return nil, fmt.Errorf("replay log at offset %d: %w", f.offset, err)
			}
			s.head = f.end
		}
	}
	return s, nil
}

func (s *store) close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wal == nil {
		return nil
	}
	err := s.wal.close()
	s.wal = nil
	if s.broken == nil {
		s.broken = errors.New("store closed")
	}
	return err
}

// writeEpoch records a $epoch-information event, as a real node does each
// time it becomes leader. The default $all filter hides it, but it takes a
// position, so the first user event is never at the start of $all and a
// filtered subscription from the start always has a record to checkpoint on.
func (s *store) writeEpoch(instance uuid.UUID) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	n := s.curVersion(epochStream) + 1
	data, err := json.Marshal(map[string]any{
		"epochNumber":      n,
		"epochId":          uuid.New().String(),
		"leaderInstanceId": instance.String(),
		"time":             s.now().UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return fmt.Errorf("encode epoch: %w", err)
	}
	return s.commit([]*record{{
		stream: epochStream, revision: uint64(n), id: uuid.New(), typ: eventTypeEpoch,
		json: true, created: ticks(s.now()), data: data, meta: []byte{},
	}})
}

// ticks converts a time to .NET ticks since the Unix epoch, the unit of the
// "created" metadata entry.
func ticks(t time.Time) int64 { return t.UnixNano() / 100 }

// commit persists recs as one frame and publishes them. Callers hold wmu.
func (s *store) commit(recs []*record) error {
	if s.broken != nil {
		return errUnavailable
	}
	frame := encodeFrame(s.head, recs)
	if s.wal != nil {
		if err := s.wal.write(frame); err != nil {
			s.broken = err
			s.logger.Error("event log write failed; refusing further writes", "err", err)
			return errUnavailable
		}
	}
	if err := s.apply(recs); err != nil {
		// Unreachable: the decision was made on the state being applied to.
		panic(fmt.Sprintf("standin: apply committed records: %v", err))
	}
	return nil
}

// apply publishes committed records to the indexes and wakes subscriptions.
func (s *store) apply(recs []*record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		st := s.streams[r.stream]
		if st == nil {
			st = &stream{meta: noMeta}
			s.streams[r.stream] = st
		}
		switch {
		case int64(r.revision) == deletedStream:
			st.tombstone = r
		case r.revision == uint64(len(st.events)):
			st.events = append(st.events, r)
		default:
			return fmt.Errorf("stream %q: revision %d does not follow %d", r.stream, r.revision, len(st.events)-1)
		}
		if isMetaStream(r.stream) && int64(r.revision) != deletedStream {
			orig := r.stream[len(metaStreamPrefix):]
			ost := s.streams[orig]
			if ost == nil {
				ost = &stream{meta: noMeta}
				s.streams[orig] = ost
			}
			ost.meta = parseMeta(r.data)
		}
		s.ids[r.id] = eventRef{stream: r.stream, revision: int64(r.revision)}
		s.log = append(s.log, r)
		s.head = r.end
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// curVersion is the server's "current version" of a stream: the last
// revision, -1 when it has no events, deletedStream when it (or, for a $$
// stream, its stream) is tombstoned. Soft-deleted streams keep their last
// revision. Callers hold wmu or mu.
func (s *store) curVersion(name string) int64 {
	if isMetaStream(name) {
		if o := s.streams[name[len(metaStreamPrefix):]]; o != nil && o.tombstone != nil {
			return deletedStream
		}
	}
	st := s.streams[name]
	if st == nil {
		return -1
	}
	if st.tombstone != nil {
		return deletedStream
	}
	return int64(len(st.events)) - 1
}

func (s *store) metaOf(name string) streamMeta {
	if isMetaStream(name) {
		return metaStreamMeta
	}
	if st := s.streams[name]; st != nil && st.meta.raw != nil {
		return st.meta
	}
	return noMeta
}

func (s *store) isSoftDeleted(name string) bool { return s.metaOf(name).tb == deletedStream }

type decision int

const (
	decOK decision = iota
	decWrongVersion
	decDeleted
	decIdempotent
)

type commitCheck struct {
	decision    decision
	current     int64
	softDeleted bool  // decOK: the write re-creates a soft-deleted stream
	last        int64 // decIdempotent: revision of the last event of the batch
}

// checkCommit decides a write of events with the given IDs, following
// KurrentDB's IndexWriter.CheckCommit:
//   - tombstoned stream: deleted (unless nothing is written and any/no_stream
//     was expected);
//   - stream_exists fails on soft-deleted streams and on streams with neither
//     events nor metadata;
//   - any / stream_exists: if the first event ID was already written to this
//     stream, the write is idempotent when all IDs were, and a wrong expected
//     version when only some were; otherwise the events are appended;
//   - an exact revision (or no_stream) behind the current one: idempotent when
//     the events after it carry exactly these IDs; no_stream on a soft-deleted
//     stream re-creates it; anything else is a wrong expected version;
//   - an exact revision ahead of the current one is a wrong expected version.
//
// Unlike the server, whose committed-event cache is bounded, the stand-in
// remembers every event ID, so retries are recognised however late they come.
func (s *store) checkCommit(name string, expected int64, ids []uuid.UUID) commitCheck {
	cur := s.curVersion(name)
	fail := commitCheck{decision: decWrongVersion, current: cur}
	ok := func(soft bool) commitCheck { return commitCheck{decision: decOK, current: cur, softDeleted: soft} }

	if cur == deletedStream {
		if len(ids) == 0 && (expected == expectAny || expected == expectNoStream || expected == deletedStream) {
			return ok(false)
		}
		return commitCheck{decision: decDeleted, current: cur}
	}
	soft := s.isSoftDeleted(name)
	if expected == expectStreamExists {
		if soft {
			return fail
		}
		if cur < 0 && s.curVersion(metaStreamPrefix+name) < 0 {
			return fail
		}
	}
	if expected == expectAny || expected == expectStreamExists {
		var last int64 = -1
		for i, id := range ids {
			ref, found := s.ids[id]
			if !found || ref.stream != name {
				if i == 0 {
					return ok(soft)
				}
				return fail // part of the batch was written: corrupted idempotency
			}
			last = ref.revision
		}
		if len(ids) == 0 {
			return ok(soft)
		}
		return commitCheck{decision: decIdempotent, current: cur, last: last}
	}
	if expected < cur {
		st := s.streams[name]
		for i, id := range ids {
			rev := expected + 1 + int64(i)
			if rev <= cur && st.events[rev].id == id {
				continue
			}
			if i > 0 {
				return fail
			}
			if expected == expectNoStream && soft {
				return ok(true)
			}
			return fail
		}
		if len(ids) == 0 {
			if expected == expectNoStream && soft {
				return ok(true)
			}
			return fail
		}
		return commitCheck{decision: decIdempotent, current: cur, last: expected + int64(len(ids))}
	}
	if expected > cur {
		return fail
	}
	return ok(soft)
}

// proposedEvent is an event as the client proposed it.
type proposedEvent struct {
	id   uuid.UUID
	typ  string
	json bool
	data []byte
	meta []byte
}

// appendOutcome is the reply to an append: a success with the current
// revision (-1: no stream) and, when something was written or recognised as
// already written, a position; or a wrong expected version with the actual one.
type appendOutcome struct {
	wrongVersion bool
	current      int64
	pos          uint64
	hasPos       bool
}

func (s *store) append(name string, expected int64, evs []proposedEvent) (appendOutcome, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ids := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		ids[i] = e.id
	}
	cc := s.checkCommit(name, expected, ids)
	switch cc.decision {
	case decDeleted:
		return appendOutcome{}, streamDeletedError{stream: name}
	case decWrongVersion:
		return appendOutcome{wrongVersion: true, current: cc.current}, nil
	case decIdempotent:
		r := s.streams[name].events[cc.last]
		return appendOutcome{current: cc.last, pos: r.pos, hasPos: true}, nil
	}
	if len(evs) == 0 {
		return appendOutcome{current: cc.current}, nil
	}

	created := ticks(s.now())
	recs := make([]*record, 0, len(evs)+1)
	for i, e := range evs {
		recs = append(recs, &record{
			stream: name, revision: uint64(cc.current + 1 + int64(i)), id: e.id, typ: e.typ,
			json: e.json, created: created, data: e.data, meta: e.meta,
		})
	}
	last := recs[len(recs)-1]
	// Writing to a soft-deleted stream re-creates it: the server rewrites its
	// metadata with $tb at the first new revision, hiding the old events.
	if cc.softDeleted {
		if raw, ok := undeleteMeta(s.metaOf(name).raw, cc.current+1); ok {
			recs = append(recs, s.metadataRecord(metaStreamPrefix+name, raw, created))
		}
	}
	// Writing metadata of a soft-deleted stream re-creates it too, keeping the
	// new metadata but truncating before the next revision.
	if isMetaStream(name) {
		orig := name[len(metaStreamPrefix):]
		if s.isSoftDeleted(orig) {
			if raw, ok := undeleteMeta(last.data, s.curVersion(orig)+1); ok {
				r := s.metadataRecord(name, raw, created)
				r.revision = last.revision + 1
				recs = append(recs, r)
			}
		}
	}
	if err := s.commit(recs); err != nil {
		return appendOutcome{}, err
	}
	return appendOutcome{current: int64(last.revision), pos: last.pos, hasPos: true}, nil
}

func (s *store) metadataRecord(metaStream string, data []byte, created int64) *record {
	return &record{
		stream: metaStream, revision: uint64(s.curVersion(metaStream) + 1), id: uuid.New(),
		typ: eventTypeMetadata, json: true, created: created, data: data, meta: []byte{},
	}
}

// delete soft-deletes (a $metadata event with $tb = max on $$<stream>) or
// tombstones (a $streamDeleted record at revision max) a stream and returns
// the position of the record written.
func (s *store) delete(name string, expected int64, hard bool) (uint64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	cc := s.checkCommit(name, expected, []uuid.UUID{uuid.New()})
	switch cc.decision {
	case decDeleted:
		return 0, streamDeletedError{stream: name}
	case decWrongVersion, decIdempotent: // a fresh ID is never idempotent
		return 0, wrongVersionError{stream: name, expected: expected, actual: cc.current}
	}
	created := ticks(s.now())
	var r *record
	if hard {
		r = &record{
			stream: name, revision: uint64(deletedStream), id: uuid.New(), typ: eventTypeStreamDeleted,
			created: created, data: []byte{}, meta: []byte{},
		}
	} else {
		metaName := metaStreamPrefix + name
		// The server refuses to soft delete a stream that has neither
		// events nor metadata, whatever the expected version.
		if s.curVersion(name) < 0 && s.curVersion(metaName) < 0 {
			return 0, wrongVersionError{stream: name, expected: expected, actual: -1}
		}
		r = s.metadataRecord(metaName, softDeletedMetaJSON, created)
	}
	if err := s.commit([]*record{r}); err != nil {
		return 0, err
	}
	return r.pos, nil
}

// readStatus is the outcome of a stream read.
type readStatus int

const (
	readOK readStatus = iota
	readNoStream
	readDeleted
)

// revisionFrom is a read's starting point in a stream.
type revisionFrom struct {
	start, end bool
	revision   uint64
}

// readStream returns up to count events of a stream honouring $maxCount,
// $maxAge and $tb ($$ streams keep only their last event). A soft-deleted
// stream reads as missing; a tombstoned one as deleted.
func (s *store) readStream(name string, forwards bool, from revisionFrom, count uint64) ([]*record, readStatus) {
	s.mu.RLock()
	cur := s.curVersion(name)
	meta := s.metaOf(name)
	var events []*record
	if st := s.streams[name]; st != nil {
		events = st.events
	}
	s.mu.RUnlock()

	switch {
	case cur == deletedStream:
		return nil, readDeleted
	case cur < 0 || meta.tb == deletedStream:
		return nil, readNoStream
	}
	lo := visibleFrom(meta, cur)
	var cutoff int64
	if meta.maxAge > 0 {
		cutoff = ticks(s.now().Add(-meta.maxAge))
	}
	var out []*record
	add := func(r *record) {
		if meta.maxAge == 0 || r.created >= cutoff {
			out = append(out, r)
		}
	}
	if forwards {
		var rev int64
		switch {
		case from.start:
			rev = 0
		case from.end:
			return nil, readOK
		default:
			rev = clampRevision(from.revision)
		}
		for rev = max(rev, lo); rev <= cur && uint64(len(out)) < count; rev++ {
			add(events[rev])
		}
		return out, readOK
	}
	rev := cur
	if from.start {
		rev = 0
	} else if !from.end {
		rev = min(clampRevision(from.revision), cur)
	}
	for ; rev >= lo && uint64(len(out)) < count; rev-- {
		add(events[rev])
	}
	return out, readOK
}

// visibleFrom is the lowest revision reads may return given the metadata.
func visibleFrom(meta streamMeta, cur int64) int64 {
	lo := int64(0)
	if meta.maxCount > 0 {
		lo = max(lo, cur-meta.maxCount+1)
	}
	if meta.tb >= 0 {
		lo = max(lo, meta.tb)
	}
	return lo
}

func clampRevision(r uint64) int64 {
	if r > uint64(deletedStream) {
		return deletedStream
	}
	return int64(r)
}

// allFrom is a starting point in $all.
type allFrom struct {
	start, end bool
	pos        uint64
}

// readAll returns up to count records of $all that pass allow. Forwards reads
// start at the first record at or after the position, backwards reads at the
// last record that ends at or before it, as the server's AllReader does.
func (s *store) readAll(forwards bool, from allFrom, count uint64, allow func(*record) bool) []*record {
	s.mu.RLock()
	log := s.log
	s.mu.RUnlock()
	var out []*record
	if forwards {
		i := len(log)
		switch {
		case from.start:
			i = 0
		case !from.end:
			i = sort.Search(len(log), func(i int) bool { return log[i].pos >= from.pos })
		}
		for ; i < len(log) && uint64(len(out)) < count; i++ {
			if allow(log[i]) {
				out = append(out, log[i])
			}
		}
		return out
	}
	i := -1
	switch {
	case from.end:
		i = len(log) - 1
	case !from.start:
		i = sort.Search(len(log), func(i int) bool { return log[i].end > from.pos }) - 1
	}
	for ; i >= 0 && uint64(len(out)) < count; i-- {
		if allow(log[i]) {
			out = append(out, log[i])
		}
	}
	return out
}

// logView is a consistent snapshot for subscriptions: the records published
// so far and a channel closed on the next commit.
func (s *store) logView() ([]*record, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.log, s.changed
}

// streamView is the stream-subscription counterpart of logView.
type streamView struct {
	events    []*record
	tombstone *record
	cur       int64
	meta      streamMeta
	changed   <-chan struct{}
}

func (s *store) streamView(name string) streamView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v := streamView{cur: s.curVersion(name), meta: s.metaOf(name), changed: s.changed}
	if st := s.streams[name]; st != nil {
		v.events, v.tombstone = st.events, st.tombstone
	}
	return v
}
