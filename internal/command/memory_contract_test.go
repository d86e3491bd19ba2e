package command_test

import (
	"testing"

	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/testing/commandtest"
)

func TestMemoryStoreContract(t *testing.T) {
	t.Parallel()
	commandtest.TestEventStore(t, func(*testing.T) command.EventStore { return commandtest.NewMemoryStore() })
}
