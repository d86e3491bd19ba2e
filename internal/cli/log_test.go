package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestValidateLog(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		level, format string
		want          []string
	}{
		{"info", "json", nil},
		{"debug", "text", nil},
		{"loud", "json", []string{"log-level"}},
		{"info", "xml", []string{"log-format"}},
		{"loud", "xml", []string{"log-level", "log-format"}},
	} {
		err := ValidateLog(tt.level, tt.format)
		if len(tt.want) == 0 {
			if err != nil {
				t.Errorf("ValidateLog(%q, %q) = %v", tt.level, tt.format, err)
			}
			continue
		}
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("ValidateLog(%q, %q) = %v, want it to name %s", tt.level, tt.format, err, w)
			}
		}
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	NewLogger(&buf, "warn", "json").Info("hidden")
	NewLogger(&buf, "warn", "json").Warn("shown", "k", 1)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "shown" || line["k"] != float64(1) {
		t.Fatalf("json log = %q (%v)", buf.String(), err)
	}
	buf.Reset()
	NewLogger(&buf, "debug", "text").Debug("hello")
	if !strings.Contains(buf.String(), "msg=hello") {
		t.Fatalf("text log = %q", buf.String())
	}
}
