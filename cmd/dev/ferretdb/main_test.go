package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr []string
	}{
		{
			name: "defaults",
			want: config{Listen: "127.0.0.1:27017", DataDir: ".data/ferretdb"},
		},
		{
			name: "environment",
			env:  map[string]string{"FERRETDB_LISTEN": "127.0.0.1:0", "FERRETDB_DATA_DIR": "/tmp/x", "FERRETDB_VERBOSE": "true"},
			want: config{Listen: "127.0.0.1:0", DataDir: "/tmp/x", Verbose: true},
		},
		{
			name: "flags win over environment",
			args: []string{"--listen", "127.0.0.1:1234", "--data-dir", "d", "--verbose=false"},
			env:  map[string]string{"FERRETDB_LISTEN": "127.0.0.1:0", "FERRETDB_DATA_DIR": "/tmp/x", "FERRETDB_VERBOSE": "true"},
			want: config{Listen: "127.0.0.1:1234", DataDir: "d"},
		},
		{
			name:    "every problem reported at once",
			args:    []string{"--listen=", "--data-dir="},
			wantErr: []string{"--listen", "--data-dir"},
		},
		{
			name:    "stray argument",
			args:    []string{"serve"},
			wantErr: []string{"unexpected arguments"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("parseConfig succeeded with %+v, want error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("parseConfig = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRunHelpIsErrHelp(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"-h"}, func(string) string { return "" }, io.Discard, io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h = %v, want flag.ErrHelp", err)
	}
}

// TestRunServesUntilCancelled drives the program as a user would: it prints a URI the driver can
// ping, and returns nil once its context (the signal context in main) is cancelled.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, outW := io.Pipe()
	done := make(chan error, 1)
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}
	go func() {
		err := run(ctx, args, func(string) string { return "" }, outW, io.Discard)
		_ = outW.Close()
		done <- err
	}()

	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading URI from stdout: %v (run: %v)", err, <-done)
	}
	uri := strings.TrimSpace(line)
	if !strings.HasPrefix(uri, "mongodb://127.0.0.1:") {
		t.Fatalf("stdout = %q, want a mongodb:// URI", line)
	}

	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		t.Fatalf("ping %s: %v", uri, err)
	}
	if err := client.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after cancel, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20 s of cancel")
	}
}

// TestDefaultDataDirIsGitIgnored keeps a newcomer's first run from leaving
// database files that git offers to commit.
func TestDefaultDataDirIsGitIgnored(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git on this machine")
	}
	cmd := exec.Command("git", "check-ignore", "-q", filepath.Join(c.DataDir, "x.sqlite"))
	cmd.Dir = "../../.."
	if err := cmd.Run(); err != nil {
		t.Errorf("the default data dir %s is not git-ignored (git check-ignore: %v)", c.DataDir, err)
	}
}
