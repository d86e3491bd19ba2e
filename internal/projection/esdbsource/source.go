// Package esdbsource makes the EventStoreDB adapter (*eventstore.Store) a
// projection.Source. It only copies types, so that the projector itself
// depends on neither the adapter nor the EventStoreDB client and can be
// tested with fakes.
package esdbsource

import (
	"context"

	"github.com/acme/cart/internal/eventstore"
	"github.com/acme/cart/internal/projection"
)

// Source subscribes through an eventstore.Store.
type Source struct {
	Store *eventstore.Store
}

var _ projection.Source = Source{}

// New returns the source for store.
func New(store *eventstore.Store) Source { return Source{Store: store} }

// Subscribe implements projection.Source.
func (s Source) Subscribe(ctx context.Context, from *projection.Position) (projection.Subscription, error) {
	var f *eventstore.Position
	if from != nil {
		f = &eventstore.Position{Commit: from.Commit, Prepare: from.Prepare}
	}
	sub, err := s.Store.SubscribeAll(ctx, f)
	if err != nil {
		return nil, err
	}
	return subscription{sub}, nil
}

type subscription struct{ sub *eventstore.Subscription }

func (s subscription) Next(ctx context.Context) (projection.Message, error) {
	m, err := s.sub.Next(ctx)
	if err != nil {
		return projection.Message{}, err
	}
	var out projection.Message
	if e := m.Event; e != nil {
		out.Event = &projection.Event{
			StreamID: e.StreamID,
			UserID:   e.UserID,
			Revision: e.Revision,
			Position: Position(e.Position),
			EventID:  e.EventID,
			Type:     e.Type,
			Data:     e.Data,
			Metadata: e.Metadata,
			Created:  e.Created,
		}
	}
	if m.Checkpoint != nil {
		p := Position(*m.Checkpoint)
		out.Checkpoint = &p
	}
	out.CaughtUp = m.CaughtUp
	return out, nil
}

func (s subscription) Close() error { return s.sub.Close() }

// Position converts an event store position, e.g. HeadPosition's, into the
// projector's.
func Position(p eventstore.Position) projection.Position {
	return projection.Position{Commit: p.Commit, Prepare: p.Prepare}
}
