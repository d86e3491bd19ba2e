package eventstore_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/dev/standin"
	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/testing/commandtest"
)

// The adapter keeps the promises the command handler relies on, checked by
// the same suite as the in-memory fake the handler's unit tests use.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	srv := standin.Start(t)
	s, err := eventstore.Open(context.Background(), srv.ConnectionString(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	commandtest.TestEventStore(t, func(*testing.T) command.EventStore { return s })
}
