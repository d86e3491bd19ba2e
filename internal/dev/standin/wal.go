package standin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
)

// logFileName is the name of the event log inside the data directory.
const logFileName = "events.log"

// wal is the append-only event log file. A frame holds one group commit
// (see store.commit) and is fsynced before any write in it is acknowledged.
// Only the store's syncer writes to it once the store is open.
type wal struct {
	f    *os.File
	size int64 // bytes known to be synced: the end of the last frame written
	// syncs counts the fsyncs of frames, so tests can see groups form
	// without timing anything.
	syncs atomic.Int64
	// syncHook, when set (by tests, before the first write), replaces the
	// fsync of a frame: it can block to let a group form, or fail.
	syncHook func(*os.File) error
}

// replayedFrame is one intact frame found on start.
type replayedFrame struct {
	offset, end uint64
	recs        []*record
}

// openWAL opens (or creates) the log in dir and returns the intact frames.
// A torn tail — a frame cut short by a crash, or one whose checksum fails
// with nothing but that frame (or zeroes) after it — is truncated away with a
// warning; it was never acknowledged. A bad frame followed by more data is
// corruption, not a torn write, and opening fails rather than silently
// dropping acknowledged events.
func openWAL(dir string, logger *slog.Logger) (*wal, []replayedFrame, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, logFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open event log: %w", err)
	}
	if err := lockLog(f); err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("read event log: %w", err)
	}
	w := &wal{f: f, size: int64(len(data))}
	if len(data) < fileHeaderSize {
		// Empty, or the header itself was torn while creating the file.
		if err := w.initHeader(data, dir); err != nil {
			_ = f.Close()
			return nil, nil, err
		}
		return w, nil, nil
	}
	if string(data[:len(fileMagic)]) != fileMagic || binary.LittleEndian.Uint32(data[8:12]) != fileVersion {
		_ = f.Close()
		return nil, nil, fmt.Errorf("%s is not a version %d stand-in event log", path, fileVersion)
	}
	frames, valid, err := scanFrames(data)
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if valid < len(data) {
		logger.Warn("discarding torn tail of the event log", "path", path, "offset", valid, "bytes", len(data)-valid)
		if err := f.Truncate(int64(valid)); err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("truncate torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("sync event log: %w", err)
		}
		w.size = int64(valid)
	}
	return w, frames, nil
}

func (w *wal) initHeader(existing []byte, dir string) error {
	header := make([]byte, fileHeaderSize)
	copy(header, fileMagic)
	binary.LittleEndian.PutUint32(header[8:12], fileVersion)
	if string(existing) != string(header[:len(existing)]) {
		return fmt.Errorf("%s is not a stand-in event log", filepath.Join(dir, logFileName))
	}
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("reset event log: %w", err)
	}
	w.size = 0
	if err := w.write(header); err != nil {
		return err
	}
	// Make the new file's directory entry durable too.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open data dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync data dir: %w", err)
	}
	return nil
}

// scanFrames returns the intact frames and the offset where they end.
func scanFrames(data []byte) ([]replayedFrame, int, error) {
	var frames []replayedFrame
	off := fileHeaderSize
	for off < len(data) {
		rest := data[off:]
		if len(rest) < frameHeaderSize {
			return frames, off, nil // torn frame header
		}
		n := uint64(binary.LittleEndian.Uint32(rest[0:4]))
		if uint64(len(rest)-frameHeaderSize) < n {
			return frames, off, nil // frame cut short
		}
		end := off + frameHeaderSize + int(n)
		payload := rest[frameHeaderSize : frameHeaderSize+int(n)]
		var recs []*record
		err := errBadChecksum
		if crc32.Checksum(payload, crcTable) == binary.LittleEndian.Uint32(rest[4:8]) {
			recs, err = decodePayload(uint64(off+frameHeaderSize), payload)
		}
		if err != nil {
			if end == len(data) || allZero(rest) {
				return frames, off, nil // torn last frame
			}
			return nil, 0, fmt.Errorf("corrupt frame at offset %d followed by %d more bytes: %w", off, len(data)-end, err)
		}
		frames = append(frames, replayedFrame{offset: uint64(off), end: uint64(end), recs: recs})
		off = end
	}
	return frames, off, nil
}

var errBadChecksum = errors.New("checksum mismatch")

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// write appends frame and fsyncs. On failure it tries to cut the file back
// so that a partial frame is not left behind.
func (w *wal) write(frame []byte) error {
	n, err := w.f.Write(frame)
	if err == nil {
		w.syncs.Add(1)
		if w.syncHook != nil {
			err = w.syncHook(w.f)
		} else {
			err = w.f.Sync()
		}
	}
	if err != nil {
		if n > 0 {
			_ = w.f.Truncate(w.size)
		}
		return fmt.Errorf("append to event log: %w", err)
	}
	w.size += int64(n)
	return nil
}

func (w *wal) close() error {
	syncErr := w.f.Sync()
	closeErr := w.f.Close()
	return errors.Join(syncErr, closeErr)
}
