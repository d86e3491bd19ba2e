package main

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", want: config{Listen: "127.0.0.1:2113", LogLevel: "info"}},
		{name: "env", env: map[string]string{"ESDB_STANDIN_LISTEN": "0.0.0.0:2114", "ESDB_STANDIN_DATA_DIR": "/data", "ESDB_STANDIN_LOG_LEVEL": "debug"},
			want: config{Listen: "0.0.0.0:2114", DataDir: "/data", LogLevel: "debug"}},
		{name: "flags win over env", args: []string{"--listen", ":1", "--data-dir", "/d", "--advertise-host", "esdb"},
			env:  map[string]string{"ESDB_STANDIN_LISTEN": "0.0.0.0:2114", "ESDB_STANDIN_DATA_DIR": "/data"},
			want: config{Listen: ":1", DataDir: "/d", AdvertiseHost: "esdb", LogLevel: "info"}},
		{name: "every problem reported", args: []string{"--listen", "nope", "--log-level", "loud"}, wantErr: `listen "nope"`},
		{name: "stray arguments", args: []string{"serve"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.name == "every problem reported" && !strings.Contains(err.Error(), `log level "loud"`) {
					t.Fatalf("err = %v, want the log level reported too", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("config = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// lineWriter hands the first line written to it to a channel.
type lineWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	line chan string
	once sync.Once
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if first, _, ok := strings.Cut(w.buf.String(), "\n"); ok {
		w.once.Do(func() { w.line <- first })
	}
	return len(p), nil
}

func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lineWriter{line: make(chan string, 1)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "warn"},
			func(string) string { return "" }, out, io.Discard)
	}()

	var conn string
	select {
	case conn = <-out.line:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("no connection string printed")
	}
	cfg, err := esdb.ParseConnectionString(conn)
	if err != nil {
		t.Fatalf("printed %q: %v", conn, err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	callCtx, callCancel := context.WithTimeout(ctx, 15*time.Second)
	defer callCancel()
	if _, err := c.AppendToStream(callCtx, "cart-main", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}},
		esdb.EventData{EventID: uuid.New(), EventType: "E", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}); err != nil {
		t.Fatalf("append through %s: %v", conn, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v, want nil after cancellation", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
}
