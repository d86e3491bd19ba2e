package readmodel

import (
	"context"
	"fmt"
	"iter"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/acme/cart/internal/projection"
)

// ScanCarts yields every document of the collection in user ID order, so
// that two collections can be compared by merging two scans without
// holding either in memory. An error ends the sequence.
func (s *Store) ScanCarts(ctx context.Context) iter.Seq2[projection.CartDoc, error] {
	return func(yield func(projection.CartDoc, error) bool) {
		cur, err := s.carts.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			yield(projection.CartDoc{}, fmt.Errorf("readmodel scan %s: %w", s.carts.Name(), translate(ctx, err)))
			return
		}
		defer cur.Close(context.WithoutCancel(ctx))
		for cur.Next(ctx) {
			var d cartDoc
			if err := cur.Decode(&d); err != nil {
				yield(projection.CartDoc{}, fmt.Errorf("readmodel scan %s: %w", s.carts.Name(), err))
				return
			}
			if !yield(fromDoc(d), nil) {
				return
			}
		}
		if err := cur.Err(); err != nil {
			yield(projection.CartDoc{}, fmt.Errorf("readmodel scan %s: %w", s.carts.Name(), translate(ctx, err)))
		}
	}
}

// CountCarts returns how many documents the collection holds.
func (s *Store) CountCarts(ctx context.Context) (int64, error) {
	n, err := s.carts.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("readmodel count %s: %w", s.carts.Name(), translate(ctx, err))
	}
	return n, nil
}
