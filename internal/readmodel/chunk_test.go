package readmodel

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/acme/cart/internal/projection"
)

// TestLargeBatchOfReplaces writes more replaces of existing documents in one
// call than FerretDB can take in one bulk write (it hangs at 100); the
// store must split them and apply every one.
func TestLargeBatchOfReplaces(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 documents")
	}
	t.Parallel()
	s, _, _ := newStore(t, Collections{})
	n := 2 * FerretDBCompat().MaxBulkWrite // FerretDB hangs at 100 in one bulk write
	creates := make([]projection.CartWrite, n)
	replaces := make([]projection.CartWrite, n)
	for i := range creates {
		user := fmt.Sprintf("u%03d", i)
		creates[i] = projection.CartWrite{Doc: sampleDoc(user, 0), Create: true}
		replaces[i] = projection.CartWrite{Doc: sampleDoc(user, 1), ExpectedVersion: 0}
	}
	mustWrite(t, s, creates...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conflicts, err := s.WriteCarts(ctx, replaces)
	if err != nil || len(conflicts) != 0 {
		t.Fatalf("WriteCarts = %v, %v", conflicts, err)
	}
	for _, user := range []string{"u000", "u050", fmt.Sprintf("u%03d", n-1)} {
		if got := mustGet(t, s, user); got.Version != 1 {
			t.Fatalf("%s at version %d, want 1", user, got.Version)
		}
	}
}
