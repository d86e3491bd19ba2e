package projection_test

import (
	"testing"

	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/testing/storetest"
)

// TestFakeStoreContract keeps the projector tests' fake honest: it must
// behave like the real read model.
func TestFakeStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) projection.Store { return projection.NewFakeStore() })
}
