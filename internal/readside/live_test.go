package readside

import (
	"context"
	"errors"
	"testing"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
	"github.com/acme/cart/internal/projection"
)

// failingCatalog is a catalog MongoDB cannot be reached for.
type failingCatalog struct{}

func (failingCatalog) Active(context.Context) (string, error) {
	return "", cart.ErrUnavailable
}
func (failingCatalog) SetActive(context.Context, string) error { return cart.ErrUnavailable }
func (failingCatalog) Drop(context.Context, string) error      { return cart.ErrUnavailable }

// stubSource is a log no projector gets to read in these tests.
type stubSource struct{}

func (stubSource) Subscribe(context.Context, *eventlog.Position) (eventlog.Subscription, error) {
	return nil, cart.ErrUnavailable
}

func TestNewLiveRejectsIncompleteConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no catalog", Config{Open: func(string) CartStore { return nil }, Projection: projection.Config{Source: stubSource{}}}},
		{"no open", Config{Catalog: failingCatalog{}, Projection: projection.Config{Source: stubSource{}}}},
		{"no source", Config{Catalog: failingCatalog{}, Open: func(string) CartStore { return nil }}},
		{"negative interval", Config{Catalog: failingCatalog{}, Open: func(string) CartStore { return nil },
			Projection: projection.Config{Source: stubSource{}}, FollowInterval: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestLiveUnavailableUntilCatalogAnswers(t *testing.T) {
	t.Parallel()
	live, err := New(Config{
		Catalog: failingCatalog{}, Open: func(string) CartStore { return nil },
		Projection: projection.Config{Source: stubSource{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = live.Run(ctx) }()
	_, _, err = live.GetCart(context.Background(), "u1")
	if !errors.Is(err, cart.ErrUnavailable) {
		t.Errorf("GetCart before the catalog answered = %v, want ErrUnavailable", err)
	}
	if live.Collection() != "" {
		t.Errorf("collection %q before the catalog answered", live.Collection())
	}
	cancel()
	<-done // Run gives up retrying when stopped
}
