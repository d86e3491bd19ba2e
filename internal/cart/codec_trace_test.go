package cart

import (
	"strings"
	"testing"
)

func TestMetadataTraceContext(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, tc := range []struct {
		name        string
		meta        Metadata
		wantInJSON  []string
		wantOutJSON []string
	}{
		{"traced", Metadata{CommandID: "c", CommandType: "AddItem", TraceParent: tp, TraceState: "v=1"},
			[]string{`"traceparent":"` + tp + `"`, `"tracestate":"v=1"`}, nil},
		{"untraced carries no fields", Metadata{CommandID: "c", CommandType: "AddItem"},
			nil, []string{"traceparent", "tracestate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalMetadata(tc.meta)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.wantInJSON {
				if !strings.Contains(string(b), w) {
					t.Errorf("metadata %s lacks %s", b, w)
				}
			}
			for _, w := range tc.wantOutJSON {
				if strings.Contains(string(b), w) {
					t.Errorf("metadata %s has %s", b, w)
				}
			}
			got, err := UnmarshalMetadata(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.TraceParent != tc.meta.TraceParent || got.TraceState != tc.meta.TraceState {
				t.Errorf("round trip = %q, %q; want %q, %q", got.TraceParent, got.TraceState, tc.meta.TraceParent, tc.meta.TraceState)
			}
		})
	}
	// An event written before tracing existed reads as untraced.
	old, err := UnmarshalMetadata([]byte(`{"command_id":"c","command_type":"AddItem","time":"2026-01-02T03:04:05Z"}`))
	if err != nil || old.TraceParent != "" || old.TraceState != "" {
		t.Errorf("old metadata = %+v, %v; want no trace context", old, err)
	}
}
