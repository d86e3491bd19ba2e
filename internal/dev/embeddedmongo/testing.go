package embeddedmongo

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// StartForTest starts a server on a free loopback port with its data in tb.TempDir(), and closes
// it in tb.Cleanup. It fails the test if the server does not start.
//
// Cost: about 10 ms and a few open files per call on a 2-core box under -race (measured by
// BenchmarkStart), so a server per test is fine and keeps each test's collections small, which
// matters because FerretDB's SQLite backend slows down as collections grow. Close is fast as long
// as the test's own clients are disconnected first; register their Disconnect in tb.Cleanup after
// calling StartForTest so that cleanup order (last in, first out) does that.
func StartForTest(tb testing.TB) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), defaultStartTimeout)
	defer cancel()
	s, err := Start(ctx, Config{Listen: "127.0.0.1:0", DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("StartForTest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("StartForTest: %v", err)
		}
	})
	return s
}

// dbSeq makes database names unique within a test binary even when one test asks for several.
var dbSeq atomic.Uint64

// maxDBName is FerretDB's limit on database names (which must match ^[a-zA-Z0-9_-]{1,63}$).
const maxDBName = 63

// NewDatabaseName returns a database name that no other caller in this test binary gets, derived
// from the test's name so that leftovers are recognisable, and drops that database in tb.Cleanup.
// It lets tests share one server (for example one started in TestMain) without seeing each
// other's data. Dropping costs one command (FerretDB deletes one SQLite file).
func (s *Server) NewDatabaseName(tb testing.TB) string {
	tb.Helper()
	suffix := "_" + strconv.FormatUint(dbSeq.Add(1), 10)
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(tb.Name()) {
		if b.Len() >= maxDBName-len(suffix) {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String() + suffix
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.admin.Database(name).Drop(ctx); err != nil {
			tb.Errorf("NewDatabaseName: drop %s: %v", name, err)
		}
	})
	return name
}
