package standin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// newClient connects the real v4 client to s and closes it with the test.
func newClient(tb testing.TB, s *Server) *esdb.Client {
	tb.Helper()
	return newClientFor(tb, s.ConnectionString())
}

func newClientFor(tb testing.TB, conn string) *esdb.Client {
	tb.Helper()
	cfg, err := esdb.ParseConnectionString(conn)
	if err != nil {
		tb.Fatalf("parse connection string %q: %v", conn, err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		tb.Fatalf("new client: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// testCtx is a context bounded well above what any test needs, so a hang
// fails the test instead of the whole run.
func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func jsonEvent(typ string, body string) esdb.EventData {
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(body)}
}

func events(n int, typ string) []esdb.EventData {
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = jsonEvent(typ, fmt.Sprintf(`{"n":%d}`, i))
	}
	return out
}

func mustAppend(tb testing.TB, c *esdb.Client, stream string, expected esdb.ExpectedRevision, evs ...esdb.EventData) *esdb.WriteResult {
	tb.Helper()
	res, err := c.AppendToStream(testCtx(tb), stream, esdb.AppendToStreamOptions{ExpectedRevision: expected}, evs...)
	if err != nil {
		tb.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

// readAllOf drains a read; a not-found stream comes back as the error.
func readAllOf(tb testing.TB, rs *esdb.ReadStream, err error) ([]*esdb.ResolvedEvent, error) {
	tb.Helper()
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func readStream(tb testing.TB, c *esdb.Client, stream string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.ResolvedEvent, error) {
	tb.Helper()
	rs, err := c.ReadStream(testCtx(tb), stream, opts, count)
	return readAllOf(tb, rs, err)
}

func readAll(tb testing.TB, c *esdb.Client, opts esdb.ReadAllOptions, count uint64) []*esdb.ResolvedEvent {
	tb.Helper()
	rs, err := c.ReadAll(testCtx(tb), opts, count)
	evs, err := readAllOf(tb, rs, err)
	if err != nil {
		tb.Fatalf("read $all: %v", err)
	}
	return evs
}

func revisions(evs []*esdb.ResolvedEvent) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.OriginalEvent().EventNumber
	}
	return out
}

func errorCode(err error) (esdb.ErrorCode, bool) {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

// nextEvent receives subscription messages until an event arrives, skipping
// checkpoints and caught-up markers and failing the test on a drop.
func nextEvent(tb testing.TB, sub *esdb.Subscription) *esdb.ResolvedEvent {
	tb.Helper()
	for {
		m := sub.Recv()
		switch {
		case m.EventAppeared != nil:
			return m.EventAppeared
		case m.SubscriptionDropped != nil:
			tb.Fatalf("subscription dropped: %v", m.SubscriptionDropped.Error)
		}
	}
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
