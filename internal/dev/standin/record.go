package standin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"

	"github.com/google/uuid"
)

// Reserved revisions and expected versions, with the values the server uses
// internally (KurrentDB ExpectedVersion / EventNumber).
const (
	expectAny          int64 = -2
	expectNoStream     int64 = -1
	expectStreamExists int64 = -4
	// deletedStream is the revision of a tombstone record and the "current
	// version" of a tombstoned stream.
	deletedStream int64 = math.MaxInt64
)

// System stream and event type names used by the server.
const (
	metaStreamPrefix       = "$$"
	epochStream            = "$epoch-information"
	eventTypeMetadata      = "$metadata"
	eventTypeStreamDeleted = "$streamDeleted"
	eventTypeEpoch         = "$epoch-information"
)

// record is one committed event. Records are immutable once published, so
// readers may use them without holding the store lock.
type record struct {
	// pos is the event's $all position; commit and prepare positions are
	// equal because every append commits itself (as IsCommitted prepares do
	// in the real server).
	pos uint64
	// end is the position just after the record (its post-position), used
	// by backwards $all reads, which return records whose end <= from.
	end      uint64
	stream   string
	revision uint64
	id       uuid.UUID
	typ      string
	json     bool
	created  int64 // .NET ticks (100 ns) since the Unix epoch
	data     []byte
	meta     []byte
}

func isMetaStream(name string) bool { return strings.HasPrefix(name, metaStreamPrefix) }

// On-disk and in-memory positions share one layout so that a server started
// from a data directory reports the same positions it reported before:
//
//	file   = header frame*
//	header = "ESDBSTND" u32(version) u32(0)                       16 bytes
//	frame  = u32le(len(payload)) u32le(crc32c(payload)) payload
//	payload= u32le(count) event*
//	event  = str(stream) uvarint(revision) id[16] str(type) u8(flags)
//	         varint(created) bytes(data) bytes(meta)
//
// An event's position is the offset of its encoding in the file, so positions
// are strictly increasing and never 0. With a log file one frame holds one
// group commit: every append queued during the previous fsync, in the order
// they were decided, written with one write and covered by one fsync. So a
// group is all-or-nothing on disk, and since nothing is written until the
// previous frame is synced, only the last frame can ever be torn. In memory
// a frame holds one append.
const (
	fileMagic       = "ESDBSTND"
	fileVersion     = 1
	fileHeaderSize  = 16
	frameHeaderSize = 8
	flagJSON        = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encodeFrame lays out recs as one frame starting at file offset base and
// assigns each record its position. It returns the frame bytes.
func encodeFrame(base uint64, recs []*record) []byte {
	buf := make([]byte, frameHeaderSize, frameHeaderSize+64+eventsSize(recs))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(recs)))
	for _, r := range recs {
		r.pos = base + uint64(len(buf))
		buf = appendEvent(buf, r)
		r.end = base + uint64(len(buf))
	}
	payload := buf[frameHeaderSize:]
	binary.LittleEndian.PutUint32(buf[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(payload, crcTable))
	return buf
}

func eventsSize(recs []*record) int {
	n := 0
	for _, r := range recs {
		n += len(r.stream) + len(r.typ) + len(r.data) + len(r.meta) + 64
	}
	return n
}

func appendEvent(buf []byte, r *record) []byte {
	buf = appendString(buf, r.stream)
	buf = binary.AppendUvarint(buf, r.revision)
	buf = append(buf, r.id[:]...)
	buf = appendString(buf, r.typ)
	var flags byte
	if r.json {
		flags |= flagJSON
	}
	buf = append(buf, flags)
	buf = binary.AppendVarint(buf, r.created)
	buf = appendBytes(buf, r.data)
	buf = appendBytes(buf, r.meta)
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

var errBadPayload = errors.New("malformed frame payload")

// decodePayload decodes the events of a frame whose payload starts at file
// offset payloadBase, assigning positions as encodeFrame did.
func decodePayload(payloadBase uint64, payload []byte) ([]*record, error) {
	if len(payload) < 4 {
		return nil, errBadPayload
	}
	count := binary.LittleEndian.Uint32(payload)
	if count == 0 {
		return nil, errBadPayload
	}
	d := decoder{buf: payload, off: 4}
	recs := make([]*record, 0, min(int(count), 1024))
	for range count {
		r := &record{pos: payloadBase + uint64(d.off)}
		r.stream = d.string()
		r.revision = d.uvarint()
		copy(r.id[:], d.take(16))
		r.typ = d.string()
		flags := d.take(1)
		if len(flags) == 1 {
			r.json = flags[0]&flagJSON != 0
		}
		r.created = d.varint()
		r.data = d.bytes()
		r.meta = d.bytes()
		if d.err != nil {
			return nil, fmt.Errorf("event %d: %w", len(recs), d.err)
		}
		r.end = payloadBase + uint64(d.off)
		recs = append(recs, r)
	}
	if d.off != len(payload) {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadPayload, len(payload)-d.off)
	}
	return recs, nil
}

type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.buf)-d.off < n {
		d.err = errBadPayload
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.err = errBadPayload
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.err = errBadPayload
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.err = errBadPayload
		return nil
	}
	b := d.take(int(n))
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func (d *decoder) string() string { return string(d.bytes()) }
