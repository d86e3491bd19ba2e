//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// crashChildEnv makes the test binary run the program instead of the tests:
// the crash test re-executes itself with it set to the data directory, so
// the stand-in runs in a process of its own that SIGKILL can end mid-write.
const crashChildEnv = "ESDB_STANDIN_CRASH_CHILD_DATA_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		err := run(context.Background(), []string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--log-level", "warn"},
			func(string) string { return "" }, os.Stdout, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "esdb-standin child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is a stand-in process on a data directory.
type child struct {
	cmd  *exec.Cmd
	conn string
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stand-in process: %v", err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	c := &child{cmd: cmd}
	// A failing check must not leave the process behind (holding the
	// test's output open).
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	select {
	case c.conn = <-line:
	case <-time.After(30 * time.Second):
	}
	if c.conn == "" {
		t.Fatal("the stand-in process printed no connection string")
	}
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	if err := c.cmd.Wait(); err == nil {
		t.Fatal("the stand-in process exited normally, not killed")
	}
}

func (c *child) client(t *testing.T) *esdb.Client {
	t.Helper()
	cfg, err := esdb.ParseConnectionString(c.conn)
	if err != nil {
		t.Fatalf("connection string %q: %v", c.conn, err)
	}
	cfg.Logger = esdb.NoopLogging()
	cl, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// attempt is one append sent to the server: its events, and the revision of
// its last event if the server acknowledged it.
type attempt struct {
	stream string
	ids    []uuid.UUID
	data   []string
	acked  bool
	last   uint64
}

// TestCrashKeepsEveryAcknowledgedAppend kills the stand-in with SIGKILL while
// 16 writers append through the v4 client (each to a stream of its own with
// exact expected revisions, and in fours to shared streams with expected
// revision any), restarts it on the same data directory and checks that
// every acknowledged event is there at its revision with its data, that
// every stream's revisions are contiguous, and that every append is there
// whole or not at all. It repeats this for a few rounds on the same
// directory, so each recovery is also checked by the next.
func TestCrashKeepsEveryAcknowledgedAppend(t *testing.T) {
	t.Parallel()
	const (
		rounds        = 4
		writers       = 16
		ackedPerRound = 300 // kill once this many appends were acknowledged
	)
	dir := t.TempDir()
	var all []*attempt
	for round := range rounds {
		c := startChild(t, dir)
		cl := c.client(t)
		verify(t, cl, all)

		var mu sync.Mutex
		acked := 0
		enough := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			stream := fmt.Sprintf("cart-crash-r%d-own-%d", round, w)
			own := w%2 == 0
			if !own {
				stream = fmt.Sprintf("cart-crash-r%d-shared-%d", round, w%4)
			}
			wg.Go(func() {
				next := esdb.ExpectedRevision(esdb.NoStream{})
				for seq := 0; ; seq++ {
					a := &attempt{stream: stream}
					evs := make([]esdb.EventData, 1+seq%3)
					for i := range evs {
						id := uuid.New()
						body, _ := json.Marshal(map[string]any{"writer": w, "seq": seq, "i": i, "id": id})
						a.ids, a.data = append(a.ids, id), append(a.data, string(body))
						evs[i] = esdb.EventData{EventID: id, EventType: "ItemAdded", ContentType: esdb.ContentTypeJson, Data: body}
					}
					opts := esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}
					if own {
						opts.ExpectedRevision = next
					}
					mu.Lock()
					all = append(all, a)
					mu.Unlock()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					res, err := cl.AppendToStream(ctx, stream, opts, evs...)
					cancel()
					if err != nil {
						return // the process is gone; this append's outcome is unknown
					}
					mu.Lock()
					a.acked, a.last = true, res.NextExpectedVersion
					acked++
					if acked == ackedPerRound {
						close(enough)
					}
					mu.Unlock()
					next = esdb.Revision(res.NextExpectedVersion)
				}
			})
		}
		select {
		case <-enough:
		case <-time.After(60 * time.Second):
			mu.Lock()
			t.Errorf("round %d: only %d appends acknowledged in a minute", round, acked)
			mu.Unlock()
		}
		c.kill(t) // writers are mid-append: none of them waits for the others
		wg.Wait()
		_ = cl.Close()
		if t.Failed() {
			return
		}
	}
	cl := startChild(t, dir).client(t)
	defer cl.Close()
	verify(t, cl, all)
}

// verify checks the recovered log against every append attempted so far.
func verify(t *testing.T, cl *esdb.Client, attempts []*attempt) {
	t.Helper()
	type found struct {
		rev  uint64
		data string
	}
	byID := map[uuid.UUID]found{}
	streams := map[string]bool{}
	for _, a := range attempts {
		streams[a.stream] = true
	}
	for name := range streams {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rs, err := cl.ReadStream(ctx, name, esdb.ReadStreamOptions{From: esdb.Start{}}, 1<<20)
		if err != nil {
			cancel()
			t.Fatalf("read %s: %v", name, err)
		}
		var rev uint64
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var esErr *esdb.Error
				if errors.As(err, &esErr) && esErr.Code() == esdb.ErrorCodeResourceNotFound {
					break // nothing of this stream was durable
				}
				t.Fatalf("read %s: %v", name, err)
			}
			e := ev.OriginalEvent()
			if e.EventNumber != rev {
				t.Fatalf("%s: revision %d follows %d: not contiguous", name, e.EventNumber, int64(rev)-1)
			}
			if _, dup := byID[e.EventID]; dup {
				t.Fatalf("%s: event %s stored twice", name, e.EventID)
			}
			byID[e.EventID] = found{rev: e.EventNumber, data: string(e.Data)}
			rev++
		}
		rs.Close()
		cancel()
	}
	acked := 0
	for _, a := range attempts {
		present := 0
		for i, id := range a.ids {
			f, ok := byID[id]
			if !ok {
				continue
			}
			present++
			if f.data != a.data[i] {
				t.Fatalf("%s: event %s has data %s, want %s", a.stream, id, f.data, a.data[i])
			}
			if a.acked {
				if want := a.last - uint64(len(a.ids)-1-i); f.rev != want {
					t.Fatalf("%s: acknowledged event %s at revision %d, want %d", a.stream, id, f.rev, want)
				}
			}
		}
		switch {
		case a.acked && present != len(a.ids):
			t.Fatalf("%s: acknowledged append of %d events recovered with %d", a.stream, len(a.ids), present)
		case present != 0 && present != len(a.ids):
			t.Fatalf("%s: unacknowledged append of %d events half there (%d)", a.stream, len(a.ids), present)
		}
		if a.acked {
			acked++
		}
	}
	if acked > 0 {
		t.Logf("verified %d appends (%d acknowledged) in %d streams", len(attempts), acked, len(streams))
	}
}
