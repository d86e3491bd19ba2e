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
// It keeps the state twice, as two indexes over the same immutable records:
//   - dec, the decided state: every write accepted so far, including those
//     whose fsync has not returned yet. Writers decide on it, so a write can
//     follow one that is still on its way to the disk (that is what lets
//     several appends to one stream share an fsync).
//   - pub, the published state: only what is durable. Reads and
//     subscriptions see nothing else, so nobody ever observes an event that a
//     crash could take back, which is what EventStoreDB guarantees too (it
//     shows only committed events).
//
// In memory mode nothing is ever pending and the two are one index.
//
// Locking: writers (append, delete, epoch) are serialised by wmu while they
// decide on dec and queue their records; wmu is not held across the fsync,
// so writers keep deciding and queueing while it runs. dec, broken, queue,
// last and closed are guarded by wmu (the syncer takes it to dequeue a group
// or to fail closed). pub is mutated only by whoever publishes (the
// syncer with a log file, the writer under wmu in memory) under mu; readers
// hold mu.RLock only to copy slice headers and metadata, then work on
// immutable records without any lock, so neither side blocks the other for
// long (readers never wait for an fsync).
type store struct {
	wmu    sync.Mutex
	dec    *index   // decided state (== pub in memory mode; nil once failed closed)
	broken error    // set when the log can no longer be written, or on close
	queue  []*group // groups waiting for the syncer, oldest first; the last one is still forming
	last   *group   // newest group with records: what a decision made now depends on
	closed bool
	now    func() time.Time
	logger *slog.Logger

	// With a log file: the syncer goroutine (syncLoop) and its signals.
	wal     *wal          // nil in memory mode
	kick    chan struct{} // capacity 1: something was queued
	stop    chan struct{} // closed by close: drain the queue and end
	stopped chan struct{} // closed when syncLoop has ended
	// head is the position of the next frame. In memory mode writers own it
	// (under wmu); with a log file the syncer does, as it alone lays out
	// frames.
	head uint64

	mu      sync.RWMutex
	pub     *index        // durable state, what reads and subscriptions see
	changed chan struct{} // closed and replaced on every publish
}

// index is the state a sequence of committed records builds: the $all log,
// the streams and, for deciding writes, the event-ID index.
type index struct {
	log     []*record // every record in $all order
	streams map[string]*stream
	ids     map[uuid.UUID]eventRef // idempotence index; nil when not needed (pub with a log file)
}

func newIndex(withIDs bool) *index {
	x := &index{streams: make(map[string]*stream)}
	if withIDs {
		x.ids = make(map[uuid.UUID]eventRef)
	}
	return x
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

// group is one group commit: the records of every write queued while the
// previous fsync ran, written as one frame and covered by one fsync. err is
// set before done is closed.
type group struct {
	recs   []*record
	writes int // appends, deletes and epochs in the group
	size   int // approximate encoded size
	done   chan struct{}
	err    error
}

// maxGroupBytes caps a group's frame. A group normally holds whatever
// arrived during one fsync; the cap only bounds the frame (its length field
// is 32 bits) and the latency of one round when writers are many or large.
// Writes that do not fit start the next group, synced right after.
const maxGroupBytes = 4 << 20

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
		now:     now,
		logger:  logger,
		head:    fileHeaderSize,
		changed: make(chan struct{}),
	}
	if dataDir == "" {
		s.pub = newIndex(true)
		s.dec = s.pub
		return s, nil
	}
	w, frames, err := openWAL(dataDir, logger)
	if err != nil {
		return nil, err
	}
	s.wal = w
	s.pub, s.dec = newIndex(false), newIndex(true)
	for _, f := range frames {
		err := s.pub.apply(f.recs)
		if err == nil {
			err = s.dec.apply(f.recs)
		}
		if err != nil {
			_ = w.close()
			return nil, fmt.Errorf("replay log at offset %d: %w", f.offset, err)
		}
		s.head = f.end
	}
	s.kick = make(chan struct{}, 1)
	s.stop = make(chan struct{})
	s.stopped = make(chan struct{})
	go s.syncLoop()
	return s, nil
}

// close lets the syncer finish the groups already queued (their writers are
// still waiting for an answer), then syncs and closes the log. Later writes
// fail. In memory mode it does nothing: Restart hands the store over.
func (s *store) close() error {
	s.wmu.Lock()
	if s.wal == nil || s.closed {
		s.wmu.Unlock()
		return nil
	}
	s.closed = true
	if s.broken == nil {
		s.broken = errors.New("store closed")
	}
	s.wmu.Unlock()
	close(s.stop)
	<-s.stopped
	return s.wal.close()
}

// writeEpoch records a $epoch-information event, as a real node does each
// time it becomes leader. The default $all filter hides it, but it takes a
// position, so the first user event is never at the start of $all and a
// filtered subscription from the start always has a record to checkpoint on.
func (s *store) writeEpoch(instance uuid.UUID) error {
	g, err := s.decideEpoch(instance)
	if err != nil {
		return err
	}
	return g.wait()
}

func (s *store) decideEpoch(instance uuid.UUID) (*group, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.broken != nil {
		return nil, errUnavailable
	}
	n := s.dec.curVersion(epochStream) + 1
	data, err := json.Marshal(map[string]any{
		"epochNumber":      n,
		"epochId":          uuid.New().String(),
		"leaderInstanceId": instance.String(),
		"time":             s.now().UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return nil, fmt.Errorf("encode epoch: %w", err)
	}
	return s.commit([]*record{{
		stream: epochStream, revision: uint64(n), id: uuid.New(), typ: eventTypeEpoch,
		json: true, created: ticks(s.now()), data: data, meta: []byte{},
	}})
}

// ticks converts a time to .NET ticks since the Unix epoch, the unit of the
// "created" metadata entry.
func ticks(t time.Time) int64 { return t.UnixNano() / 100 }

// commit accepts recs, decided on dec, and returns the group to wait for
// before the write may be acknowledged. Callers hold wmu.
//
// In memory mode the records are published at once (nil group). With a log
// file they join the group now forming, so that everything arriving while
// an fsync runs shares the next one, and dec moves ahead of the disk until
// the syncer has written them.
func (s *store) commit(recs []*record) (*group, error) {
	if s.broken != nil {
		return nil, errUnavailable
	}
	if s.wal == nil {
		encodeFrame(s.head, recs)
		s.head = recs[len(recs)-1].end
		if err := s.publish(recs); err != nil {
			// Unreachable: the decision was made on the state being applied to.
			panic(fmt.Sprintf("standin: apply committed records: %v", err))
		}
		return nil, nil
	}
	if err := s.dec.apply(recs); err != nil {
		panic(fmt.Sprintf("standin: apply decided records: %v", err))
	}
	size := eventsSize(recs)
	var g *group
	if n := len(s.queue); n > 0 && s.queue[n-1].size+size <= maxGroupBytes {
		g = s.queue[n-1]
	} else {
		g = &group{done: make(chan struct{})}
		s.queue = append(s.queue, g)
	}
	g.recs = append(g.recs, recs...)
	g.writes++
	g.size += size
	s.last = g
	select {
	case s.kick <- struct{}{}:
	default: // the syncer has a wake-up pending already
	}
	return g, nil
}

// pending is the group a decision taken now depends on: the newest one
// holding records that are not durable yet, or nil. Every outcome, not only
// a write, waits for it: a wrong-version reply, an idempotent success or a
// "stream deleted" may rest on records still in flight, and must not be
// given if those are then lost. Callers hold wmu.
func (s *store) pending() *group { return s.last }

// wait blocks until the group is durable and published, or has failed.
func (g *group) wait() error {
	if g == nil {
		return nil
	}
	<-g.done
	return g.err
}

// syncLoop is the syncer: it takes the oldest queued group, writes it as one
// frame, fsyncs, publishes it and releases its writers, then takes the next.
// There is no timer: a group is whatever was queued during the previous
// fsync, so a lone append is synced at once and latency is one fsync plus
// the one in progress.
func (s *store) syncLoop() {
	defer close(s.stopped)
	for {
		s.wmu.Lock()
		var g *group
		if len(s.queue) > 0 {
			g = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
		}
		s.wmu.Unlock()
		if g == nil {
			select {
			case <-s.kick:
				continue
			case <-s.stop:
			}
			s.wmu.Lock()
			idle := len(s.queue) == 0
			s.wmu.Unlock()
			if idle { // broken is set: nothing more can be queued
				return
			}
			continue
		}
		s.flush(g)
	}
}

func (s *store) flush(g *group) {
	frame := encodeFrame(s.head, g.recs)
	if err := s.wal.write(frame); err != nil {
		s.fail(g, err)
		return
	}
	s.head += uint64(len(frame))
	if err := s.publish(g.recs); err != nil {
		panic(fmt.Sprintf("standin: publish synced records: %v", err))
	}
	close(g.done)
}

// fail handles a log write or fsync error by failing closed. Every write of
// the group and of every group queued behind it fails with Unavailable, and
// so does every outcome decided on them (they wait for the newest group).
// From then on every append and delete is refused: after a failed fsync the
// file's state is unknown (the kernel may have dropped the dirty pages, and
// a retried fsync can report success without writing them), so carrying on
// could acknowledge writes that a restart would not find. The decided state,
// which ran ahead of the disk, is discarded; reads and subscriptions keep
// serving the published state, which holds exactly what was synced. A
// restart recovers from the file.
//
// wal.write cuts the file back to the last synced frame, so normally a
// restart does not find the failed writes; if they reached the disk anyway
// they reappear, which a client must allow for after any failed append (its
// outcome is unknown; a retry with the same event IDs is idempotent).
func (s *store) fail(g *group, err error) {
	s.wmu.Lock()
	s.broken = err
	failed := append([]*group{g}, s.queue...)
	s.queue = nil
	s.last = nil
	s.dec = nil
	s.wmu.Unlock()
	writes := 0
	for _, f := range failed {
		writes += f.writes
		f.err = errUnavailable
		close(f.done)
	}
	s.logger.Error("event log write failed; refusing further writes", "err", err, "failed_writes", writes)
}

// publish makes committed records visible to reads and wakes subscriptions.
func (s *store) publish(recs []*record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.pub.apply(recs)
	close(s.changed)
	s.changed = make(chan struct{})
	return err
}

// apply adds committed records to the index.
func (x *index) apply(recs []*record) error {
	for _, r := range recs {
		st := x.streams[r.stream]
		if st == nil {
			st = &stream{meta: noMeta}
			x.streams[r.stream] = st
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
			ost := x.streams[orig]
			if ost == nil {
				ost = &stream{meta: noMeta}
				x.streams[orig] = ost
			}
			ost.meta = parseMeta(r.data)
		}
		if x.ids != nil {
			x.ids[r.id] = eventRef{stream: r.stream, revision: int64(r.revision)}
		}
		x.log = append(x.log, r)
	}
	return nil
}

// curVersion is the server's "current version" of a stream: the last
// revision, -1 when it has no events, deletedStream when it (or, for a $$
// stream, its stream) is tombstoned. Soft-deleted streams keep their last
// revision.
func (x *index) curVersion(name string) int64 {
	if isMetaStream(name) {
		if o := x.streams[name[len(metaStreamPrefix):]]; o != nil && o.tombstone != nil {
			return deletedStream
		}
	}
	st := x.streams[name]
	if st == nil {
		return -1
	}
	if st.tombstone != nil {
		return deletedStream
	}
	return int64(len(st.events)) - 1
}

func (x *index) metaOf(name string) streamMeta {
	if isMetaStream(name) {
		return metaStreamMeta
	}
	if st := x.streams[name]; st != nil && st.meta.raw != nil {
		return st.meta
	}
	return noMeta
}

func (x *index) isSoftDeleted(name string) bool { return x.metaOf(name).tb == deletedStream }

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
func (x *index) checkCommit(name string, expected int64, ids []uuid.UUID) commitCheck {
	cur := x.curVersion(name)
	fail := commitCheck{decision: decWrongVersion, current: cur}
	ok := func(soft bool) commitCheck { return commitCheck{decision: decOK, current: cur, softDeleted: soft} }

	if cur == deletedStream {
		if len(ids) == 0 && (expected == expectAny || expected == expectNoStream || expected == deletedStream) {
			return ok(false)
		}
		return commitCheck{decision: decDeleted, current: cur}
	}
	soft := x.isSoftDeleted(name)
	if expected == expectStreamExists {
		if soft {
			return fail
		}
		if cur < 0 && x.curVersion(metaStreamPrefix+name) < 0 {
			return fail
		}
	}
	if expected == expectAny || expected == expectStreamExists {
		var last int64 = -1
		for i, id := range ids {
			ref, found := x.ids[id]
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
		st := x.streams[name]
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

// append decides the write under wmu, then waits, without the lock, until
// what the decision rests on is durable: its own records, or for any other
// outcome the newest group in flight (see pending). So an acknowledgement
// always means durable, and writers arriving meanwhile decide, queue and
// share the next fsync.
func (s *store) append(name string, expected int64, evs []proposedEvent) (appendOutcome, error) {
	return awaitAppend(s.decideAppend(name, expected, evs))
}

// awaitAppend waits for what decideAppend's outcome rests on and completes
// the reply.
func awaitAppend(out appendOutcome, at *record, g *group, err error) (appendOutcome, error) {
	// Even "stream deleted" waits: the tombstone may still be in flight.
	if werr := g.wait(); werr != nil {
		return appendOutcome{}, werr
	}
	if err != nil {
		return appendOutcome{}, err
	}
	if at != nil {
		// Positions are laid out by the syncer, so read once synced.
		out.pos, out.hasPos = at.pos, true
	}
	return out, nil
}

// decideAppend returns the outcome, the record whose position the reply
// carries (if any) and the group to wait for.
func (s *store) decideAppend(name string, expected int64, evs []proposedEvent) (appendOutcome, *record, *group, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.broken != nil { // failed closed (see fail) or closed
		return appendOutcome{}, nil, nil, errUnavailable
	}
	ids := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		ids[i] = e.id
	}
	cc := s.dec.checkCommit(name, expected, ids)
	switch cc.decision {
	case decDeleted:
		return appendOutcome{}, nil, s.pending(), streamDeletedError{stream: name}
	case decWrongVersion:
		return appendOutcome{wrongVersion: true, current: cc.current}, nil, s.pending(), nil
	case decIdempotent:
		return appendOutcome{current: cc.last}, s.dec.streams[name].events[cc.last], s.pending(), nil
	}
	if len(evs) == 0 {
		return appendOutcome{current: cc.current}, nil, s.pending(), nil
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
		if raw, ok := undeleteMeta(s.dec.metaOf(name).raw, cc.current+1); ok {
			recs = append(recs, s.metadataRecord(metaStreamPrefix+name, raw, created))
		}
	}
	// Writing metadata of a soft-deleted stream re-creates it too, keeping the
	// new metadata but truncating before the next revision.
	if isMetaStream(name) {
		orig := name[len(metaStreamPrefix):]
		if s.dec.isSoftDeleted(orig) {
			if raw, ok := undeleteMeta(last.data, s.dec.curVersion(orig)+1); ok {
				r := s.metadataRecord(name, raw, created)
				r.revision = last.revision + 1
				recs = append(recs, r)
			}
		}
	}
	g, err := s.commit(recs)
	if err != nil {
		return appendOutcome{}, nil, nil, err
	}
	return appendOutcome{current: int64(last.revision)}, last, g, nil
}

// metadataRecord builds the next event of a $$ stream. Callers hold wmu.
func (s *store) metadataRecord(metaStream string, data []byte, created int64) *record {
	return &record{
		stream: metaStream, revision: uint64(s.dec.curVersion(metaStream) + 1), id: uuid.New(),
		typ: eventTypeMetadata, json: true, created: created, data: data, meta: []byte{},
	}
}

// delete soft-deletes (a $metadata event with $tb = max on $$<stream>) or
// tombstones (a $streamDeleted record at revision max) a stream and returns
// the position of the record written, once it is durable (as append does).
func (s *store) delete(name string, expected int64, hard bool) (uint64, error) {
	return awaitDelete(s.decideDelete(name, expected, hard))
}

func awaitDelete(r *record, g *group, err error) (uint64, error) {
	if werr := g.wait(); werr != nil {
		return 0, werr
	}
	if err != nil {
		return 0, err
	}
	return r.pos, nil
}

func (s *store) decideDelete(name string, expected int64, hard bool) (*record, *group, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.broken != nil {
		return nil, nil, errUnavailable
	}
	cc := s.dec.checkCommit(name, expected, []uuid.UUID{uuid.New()})
	switch cc.decision {
	case decDeleted:
		return nil, s.pending(), streamDeletedError{stream: name}
	case decWrongVersion, decIdempotent: // a fresh ID is never idempotent
		return nil, s.pending(), wrongVersionError{stream: name, expected: expected, actual: cc.current}
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
		if s.dec.curVersion(name) < 0 && s.dec.curVersion(metaName) < 0 {
			return nil, s.pending(), wrongVersionError{stream: name, expected: expected, actual: -1}
		}
		r = s.metadataRecord(metaName, softDeletedMetaJSON, created)
	}
	g, err := s.commit([]*record{r})
	if err != nil {
		return nil, nil, err
	}
	return r, g, nil
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
	cur := s.pub.curVersion(name)
	meta := s.pub.metaOf(name)
	var events []*record
	if st := s.pub.streams[name]; st != nil {
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
	log := s.pub.log
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
	return s.pub.log, s.changed
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
	v := streamView{cur: s.pub.curVersion(name), meta: s.pub.metaOf(name), changed: s.changed}
	if st := s.pub.streams[name]; st != nil {
		v.events, v.tombstone = st.events, st.tombstone
	}
	return v
}
