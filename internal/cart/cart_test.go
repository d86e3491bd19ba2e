package cart

import (
	"reflect"
	"testing"
)

func TestApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		given     []Event
		wantItems []Item
		wantTotal Money
		wantCount int
	}{
		{name: "empty", wantTotal: Money{}, wantCount: 0},
		{name: "adds keep first-added order and latest price",
			given:     []Event{ItemAdded{"a", 1, eur(2, 0)}, ItemAdded{"b", 2, eur(1, 500_000_000)}, ItemAdded{"a", 2, eur(3, 0)}},
			wantItems: []Item{{"a", 3, eur(3, 0)}, {"b", 2, eur(1, 500_000_000)}}, wantTotal: eur(12, 0), wantCount: 5},
		{name: "remove and change", given: []Event{ItemAdded{"a", 1, eur(2, 0)}, ItemAdded{"b", 2, eur(1, 0)}, ItemRemoved{"a"}, ItemQuantityChanged{"b", 5}},
			wantItems: []Item{{"b", 5, eur(1, 0)}}, wantTotal: eur(5, 0), wantCount: 5},
		{name: "events for missing lines change nothing", given: []Event{ItemRemoved{"x"}, ItemQuantityChanged{"y", 3}}, wantTotal: Money{}},
		{name: "cleared", given: []Event{ItemAdded{"a", 1, eur(2, 0)}, CartCleared{}}, wantTotal: Money{}},
		{name: "checked out", given: []Event{ItemAdded{"a", 1, eur(2, 0)}, CartCheckedOut{"c", nil, eur(2, 0)}}, wantTotal: Money{}},
		{name: "repriced line keeps its quantity and place", given: []Event{ItemAdded{"a", 2, eur(2, 0)}, ItemAdded{"b", 1, eur(1, 0)}, ItemRepriced{"a", eur(2, 0), eur(3, 0)}},
			wantItems: []Item{{"a", 2, eur(3, 0)}, {"b", 1, eur(1, 0)}}, wantTotal: eur(7, 0), wantCount: 3},
		{name: "repricing a missing line changes nothing", given: []Event{ItemRepriced{"x", eur(2, 0), eur(3, 0)}}, wantTotal: Money{}},
		{name: "nanos carry into units", given: []Event{ItemAdded{"a", 3, eur(0, 400_000_000)}},
			wantItems: []Item{{"a", 3, eur(0, 400_000_000)}}, wantTotal: eur(1, 200_000_000), wantCount: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Fold(Cart{}, tt.given...)
			if !reflect.DeepEqual(c.Items, tt.wantItems) {
				t.Errorf("items = %+v, want %+v", c.Items, tt.wantItems)
			}
			if c.Total() != tt.wantTotal {
				t.Errorf("total = %v, want %v", c.Total(), tt.wantTotal)
			}
			if c.ItemCount() != tt.wantCount {
				t.Errorf("count = %d, want %d", c.ItemCount(), tt.wantCount)
			}
		})
	}
}

func TestApplyDoesNotMutateSharedState(t *testing.T) {
	t.Parallel()
	base := Fold(Cart{}, ItemAdded{"a", 1, eur(1, 0)}, ItemAdded{"b", 1, eur(1, 0)})
	snapshot := base.Clone()
	for _, e := range []Event{ItemAdded{"a", 5, eur(9, 0)}, ItemRemoved{"a"}, ItemQuantityChanged{"b", 9}, ItemRepriced{"b", eur(1, 0), eur(2, 0)}, CartCleared{}} {
		_ = base.Apply(e)
		if !reflect.DeepEqual(base, snapshot) {
			t.Fatalf("Apply(%T) mutated the cart it was called on", e)
		}
	}
}

func TestMaxTotalFitsInt64(t *testing.T) {
	t.Parallel()
	var ev []Event
	for i := 0; i < MaxLines; i++ {
		ev = append(ev, ItemAdded{ProductID: string(rune('A'+i%26)) + string(rune('a'+i/26)), Quantity: MaxQuantity, UnitPrice: eur(MaxUnitPriceUnits, 999_999_999)})
	}
	c := Fold(Cart{}, ev...)
	got := c.Total()
	if got.Units != MaxLines*MaxQuantity*(MaxUnitPriceUnits+1)-1 || got.Nanos != 1_000_000_000-MaxLines*MaxQuantity {
		t.Fatalf("total = %v", got)
	}
}
