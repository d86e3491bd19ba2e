package standin

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// streamMeta is the part of a stream's metadata ($$<stream>, last $metadata
// event) that changes what reads return.
type streamMeta struct {
	maxCount int64         // 0 = unlimited
	maxAge   time.Duration // 0 = unlimited
	tb       int64         // truncate before; -1 = none, deletedStream = soft deleted
	raw      []byte        // the JSON as written, kept for soft undelete
}

var noMeta = streamMeta{tb: -1}

// metaStreamMeta is the implicit metadata of every $$ stream: the server keeps
// only the latest metadata event visible.
var metaStreamMeta = streamMeta{maxCount: 1, tb: -1}

// parseMeta reads the system properties the server honours. Like the server
// (StreamMetadata.FromJsonBytes behind EatException), anything that does not
// parse yields empty metadata rather than an error.
func parseMeta(data []byte) streamMeta {
	m := noMeta
	m.raw = data
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var props map[string]any
	if err := dec.Decode(&props); err != nil {
		return m
	}
	if v, ok := jsonInt(props["$maxCount"]); ok && v > 0 {
		m.maxCount = v
	}
	if v, ok := jsonInt(props["$maxAge"]); ok && v > 0 {
		if v > int64(math.MaxInt64/int64(time.Second)) {
			v = int64(math.MaxInt64 / int64(time.Second))
		}
		m.maxAge = time.Duration(v) * time.Second
	}
	if v, ok := jsonInt(props["$tb"]); ok && v >= 0 {
		m.tb = v
	}
	return m
}

// jsonInt accepts integers, and floats such as 9.223372036854776e18 that JSON
// encoders without 64-bit integers produce for $tb of a deleted stream.
func jsonInt(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, true
	}
	if _, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return math.MaxInt64, true // larger than any revision
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f < 0 {
		return 0, false
	}
	if f >= math.MaxInt64 {
		return math.MaxInt64, true
	}
	return int64(f), true
}

// softDeletedMetaJSON is what the server writes to $$<stream> on a soft
// delete: the previous metadata is replaced, not merged.
var softDeletedMetaJSON = []byte(`{"$tb":9223372036854775807}`)

// undeleteMeta returns raw with $tb set to recreateFrom, as the server does
// when a soft-deleted stream is written to again. ok is false when raw is not
// a JSON object; the server then leaves the metadata alone.
func undeleteMeta(raw []byte, recreateFrom int64) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var props map[string]any
	if err := dec.Decode(&props); err != nil || props == nil {
		return nil, false
	}
	props["$tb"] = recreateFrom
	out, err := json.Marshal(props)
	if err != nil {
		return nil, false
	}
	return out, true
}
