package realstores

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// listenUnix serves a Unix socket at path for the rest of the test, like an
// engine would (nothing is read: the search only dials).
func listenUnix(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
}

// stagedHost is a machine with nothing on it: no environment, an empty home,
// no default socket, no /run/user.
func stagedHost(t *testing.T, env map[string]string) host {
	t.Helper()
	// Unix socket paths are limited to ~100 bytes; t.TempDir can be long.
	root, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	return host{
		getenv:        func(k string) string { return env[k] },
		home:          filepath.Join(root, "h"),
		uid:           1000,
		defaultSocket: filepath.Join(root, "var", "docker.sock"),
		runDir:        filepath.Join(root, "run"),
	}
}

func TestEndpointsFollowTestcontainersOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		// stage creates files on the host (and may change its environment)
		// and returns the expected endpoints.
		stage func(t *testing.T, h *host) []string
	}{
		{
			name:  "nothing anywhere",
			stage: func(*testing.T, *host) []string { return nil },
		},
		{
			name: "DOCKER_HOST only",
			env:  map[string]string{"DOCKER_HOST": "tcp://10.0.0.1:2375"},
			stage: func(*testing.T, *host) []string {
				return []string{"tcp://10.0.0.1:2375"}
			},
		},
		{
			name: "default socket after DOCKER_HOST",
			env:  map[string]string{"DOCKER_HOST": "unix:///elsewhere.sock"},
			stage: func(t *testing.T, h *host) []string {
				listenUnix(t, h.defaultSocket)
				return []string{"unix:///elsewhere.sock", "unix://" + h.defaultSocket}
			},
		},
		{
			name: "properties: tc.host first, docker.host after the default socket",
			stage: func(t *testing.T, h *host) []string {
				if err := os.MkdirAll(h.home, 0o755); err != nil {
					t.Fatal(err)
				}
				props := "# comment\ntc.host=tcp://127.0.0.1:1\ndocker.host : unix:///props.sock\nryuk.disabled=true\n"
				if err := os.WriteFile(filepath.Join(h.home, ".testcontainers.properties"), []byte(props), 0o644); err != nil {
					t.Fatal(err)
				}
				listenUnix(t, h.defaultSocket)
				return []string{"tcp://127.0.0.1:1", "unix://" + h.defaultSocket, "unix:///props.sock"}
			},
		},
		{
			name: "rootless sockets in their order, missing ones left out",
			env:  map[string]string{"XDG_RUNTIME_DIR": "/nonexistent-xdg"},
			stage: func(t *testing.T, h *host) []string {
				desktop := filepath.Join(h.home, ".docker", "desktop", "docker.sock")
				runUser := filepath.Join(h.runDir, "user", "1000", "docker.sock")
				listenUnix(t, runUser)
				listenUnix(t, desktop)
				return []string{"unix://" + desktop, "unix://" + runUser}
			},
		},
		{
			name: "the same endpoint twice is listed once",
			stage: func(t *testing.T, h *host) []string {
				listenUnix(t, h.defaultSocket)
				h.getenv = func(k string) string {
					if k == "DOCKER_HOST" {
						return "unix://" + h.defaultSocket
					}
					return ""
				}
				return []string{"unix://" + h.defaultSocket}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := stagedHost(t, tt.env)
			want := tt.stage(t, &h)
			if got := endpoints(h); !slices.Equal(got, want) {
				t.Errorf("endpoints = %q, want %q", got, want)
			}
		})
	}
}

func TestFindEngine(t *testing.T) {
	t.Parallel()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tcp.Close() })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	_ = closed.Close()

	tests := []struct {
		name    string
		env     map[string]string
		stage   func(t *testing.T, h host)
		wantErr string // "" for found
	}{
		{name: "nothing anywhere", wantErr: "DOCKER_HOST is not set and no Docker socket exists"},
		{
			name: "a stale socket file nobody listens on",
			stage: func(t *testing.T, h host) {
				if err := os.MkdirAll(filepath.Dir(h.defaultSocket), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(h.defaultSocket, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "nothing accepts connections",
		},
		{name: "DOCKER_HOST on a closed port", env: map[string]string{"DOCKER_HOST": "tcp://" + closedAddr}, wantErr: closedAddr},
		{name: "DOCKER_HOST listening", env: map[string]string{"DOCKER_HOST": "tcp://" + tcp.Addr().String()}},
		{
			name:  "default socket listening",
			stage: func(t *testing.T, h host) { listenUnix(t, h.defaultSocket) },
		},
		{
			name: "first endpoint dead, a later one alive",
			env:  map[string]string{"DOCKER_HOST": "tcp://" + closedAddr},
			stage: func(t *testing.T, h host) {
				listenUnix(t, filepath.Join(h.home, ".docker", "run", "docker.sock"))
			},
		},
		// Not dialled here; the bounded testcontainers-go check decides.
		{name: "ssh DOCKER_HOST", env: map[string]string{"DOCKER_HOST": "ssh://user@build-host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := stagedHost(t, tt.env)
			if tt.stage != nil {
				tt.stage(t, h)
			}
			err := findEngine(h)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("findEngine = %v, want an engine found", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("findEngine = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// skipRecorder is a testing.TB that records a skip instead of performing
// it on the running test; like the real one, Skipf ends the goroutine.
type skipRecorder struct {
	testing.TB
	msg string
}

func (r *skipRecorder) Helper() {}

func (r *skipRecorder) Skipf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// gateOn runs gate on a recorder in its own goroutine (Skipf ends it) and
// returns the skip message, "" when gate let the test run.
func gateOn(t *testing.T, short bool, check func() error) string {
	t.Helper()
	rec := &skipRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		gate(rec, EventStoreDBImage, short, check)
	}()
	<-done
	return rec.msg
}

func TestGate(t *testing.T) {
	t.Parallel()
	t.Run("no engine: skip with the reason", func(t *testing.T) {
		t.Parallel()
		msg := gateOn(t, false, func() error { return errors.New("no socket here") })
		for _, want := range []string{skipReason, "skipping tests against the real " + EventStoreDBImage + " image", "no socket here"} {
			if !strings.Contains(msg, want) {
				t.Errorf("skip message %q does not say %q", msg, want)
			}
		}
	})
	t.Run("-short: skip without looking for an engine", func(t *testing.T) {
		t.Parallel()
		looked := false
		msg := gateOn(t, true, func() error { looked = true; return nil })
		if !strings.HasPrefix(msg, "-short: ") || looked {
			t.Errorf("skip message %q, looked for an engine: %v; want a -short skip without looking", msg, looked)
		}
	})
	t.Run("engine present: run", func(t *testing.T) {
		t.Parallel()
		if msg := gateOn(t, false, func() error { return nil }); msg != "" {
			t.Errorf("skipped with %q although the engine answered", msg)
		}
	})
}
