package cart

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func eur(units int64, nanos int32) Money {
	return Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
}

// fullCart has MaxLines distinct products, one of each.
func fullCart() []Event {
	ev := make([]Event, MaxLines)
	for i := range ev {
		ev[i] = ItemAdded{ProductID: fmt.Sprintf("p%d", i), Quantity: 1, UnitPrice: eur(1, 0)}
	}
	return ev
}

func TestDecide(t *testing.T) {
	t.Parallel()
	added := ItemAdded{ProductID: "sku-1", Quantity: 2, UnitPrice: eur(10, 500_000_000)}
	tests := []struct {
		name    string
		given   []Event
		when    Command
		then    []Event
		wantErr error
		// field that a ValidationError must name, when wantErr is a validation error.
		field string
	}{
		{name: "add to empty cart", when: AddItem{"sku-1", 2, eur(10, 500_000_000)}, then: []Event{added}},
		{name: "add same product adds quantity and takes latest price", given: []Event{added},
			when: AddItem{"sku-1", 3, eur(9, 0)}, then: []Event{ItemAdded{"sku-1", 3, eur(9, 0)}}},
		{name: "add up to the quantity limit", given: []Event{ItemAdded{"sku-1", 98, eur(1, 0)}},
			when: AddItem{"sku-1", 1, eur(1, 0)}, then: []Event{ItemAdded{"sku-1", 1, eur(1, 0)}}},
		{name: "add past the quantity limit", given: []Event{ItemAdded{"sku-1", 98, eur(1, 0)}},
			when: AddItem{"sku-1", 2, eur(1, 0)}, wantErr: ErrQuantityLimit},
		{name: "add a 51st line", given: fullCart(), when: AddItem{"new", 1, eur(1, 0)}, wantErr: ErrLineLimit},
		{name: "add to an existing line of a full cart", given: fullCart(), when: AddItem{"p7", 1, eur(1, 0)},
			then: []Event{ItemAdded{"p7", 1, eur(1, 0)}}},
		{name: "add in another currency", given: []Event{added},
			when: AddItem{"sku-2", 1, Money{"USD", 1, 0}}, wantErr: ErrCurrencyMismatch},
		{name: "another currency after the cart was cleared", given: []Event{added, CartCleared{}},
			when: AddItem{"sku-2", 1, Money{"USD", 1, 0}}, then: []Event{ItemAdded{"sku-2", 1, Money{"USD", 1, 0}}}},
		{name: "add free item", when: AddItem{"gift", 1, eur(0, 0)}, then: []Event{ItemAdded{"gift", 1, eur(0, 0)}}},
		{name: "add zero quantity", when: AddItem{"sku-1", 0, eur(1, 0)}, wantErr: &ValidationError{}, field: "quantity"},
		{name: "add 100 at once", when: AddItem{"sku-1", 100, eur(1, 0)}, wantErr: &ValidationError{}, field: "quantity"},
		{name: "add negative price", when: AddItem{"sku-1", 1, eur(-1, 0)}, wantErr: &ValidationError{}, field: "unit_price"},
		{name: "add bad currency", when: AddItem{"sku-1", 1, Money{"eur", 1, 0}}, wantErr: &ValidationError{}, field: "unit_price.currency_code"},
		{name: "add nanos out of range", when: AddItem{"sku-1", 1, eur(1, 1_000_000_000)}, wantErr: &ValidationError{}, field: "unit_price.nanos"},
		{name: "add price above limit", when: AddItem{"sku-1", 1, eur(MaxUnitPriceUnits+1, 0)}, wantErr: &ValidationError{}, field: "unit_price.units"},
		{name: "add empty product", when: AddItem{"", 1, eur(1, 0)}, wantErr: &ValidationError{}, field: "product_id"},
		{name: "add product with a space", when: AddItem{"a b", 1, eur(1, 0)}, wantErr: &ValidationError{}, field: "product_id"},
		{name: "add product id too long", when: AddItem{strings.Repeat("x", 129), 1, eur(1, 0)}, wantErr: &ValidationError{}, field: "product_id"},
		{name: "add product id of 128", when: AddItem{strings.Repeat("x", 128), 1, eur(1, 0)}, then: []Event{ItemAdded{strings.Repeat("x", 128), 1, eur(1, 0)}}},
		{name: "remove present", given: []Event{added}, when: RemoveItem{"sku-1"}, then: []Event{ItemRemoved{"sku-1"}}},
		{name: "remove missing", given: []Event{added}, when: RemoveItem{"sku-2"}, wantErr: ErrItemNotFound},
		{name: "remove already removed", given: []Event{added, ItemRemoved{"sku-1"}}, when: RemoveItem{"sku-1"}, wantErr: ErrItemNotFound},
		{name: "change quantity", given: []Event{added}, when: ChangeItemQuantity{"sku-1", 7}, then: []Event{ItemQuantityChanged{"sku-1", 7}}},
		{name: "change to same quantity writes nothing", given: []Event{added}, when: ChangeItemQuantity{"sku-1", 2}},
		{name: "change missing", when: ChangeItemQuantity{"sku-1", 7}, wantErr: ErrItemNotFound},
		{name: "change to zero", given: []Event{added}, when: ChangeItemQuantity{"sku-1", 0}, wantErr: &ValidationError{}, field: "quantity"},
		{name: "change to 100", given: []Event{added}, when: ChangeItemQuantity{"sku-1", 100}, wantErr: &ValidationError{}, field: "quantity"},
		{name: "clear", given: []Event{added}, when: ClearCart{}, then: []Event{CartCleared{}}},
		{name: "clear empty writes nothing", when: ClearCart{}},
		{name: "clear after checkout writes nothing", given: []Event{added, CartCheckedOut{"c1", []Item{{"sku-1", 2, eur(10, 500_000_000)}}, eur(21, 0)}}, when: ClearCart{}},
		{name: "checkout records lines and total", given: []Event{added, ItemAdded{"sku-2", 1, eur(0, 250_000_000)}},
			when: CheckoutCart{"co-1"},
			then: []Event{CartCheckedOut{"co-1", []Item{{"sku-1", 2, eur(10, 500_000_000)}, {"sku-2", 1, eur(0, 250_000_000)}}, eur(21, 250_000_000)}}},
		{name: "checkout empty", when: CheckoutCart{"co-1"}, wantErr: ErrCartEmpty},
		{name: "checkout twice", given: []Event{added, CartCheckedOut{"co-1", nil, eur(21, 0)}}, when: CheckoutCart{"co-2"}, wantErr: ErrCartEmpty},
		{name: "checkout without id", given: []Event{added}, when: CheckoutCart{}, wantErr: &ValidationError{}, field: "checkout_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			state := Fold(Cart{}, tt.given...)
			before := state.Clone()
			got, err := Decide(state, tt.when)
			if !reflect.DeepEqual(state, before) {
				t.Fatalf("Decide changed its input state")
			}
			var ve *ValidationError
			switch {
			case errors.As(tt.wantErr, &ve):
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want a validation error", err)
				}
				if len(ve.Violations) == 0 || ve.Violations[0].Field != tt.field {
					t.Fatalf("violations = %+v, want field %q first", ve.Violations, tt.field)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != nil && got != nil {
				t.Fatalf("events %v returned with an error", got)
			}
			if tt.wantErr == nil && !reflect.DeepEqual(got, tt.then) {
				t.Fatalf("events = %#v, want %#v", got, tt.then)
			}
		})
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	t.Parallel()
	err := AddItem{ProductID: "", Quantity: 0, UnitPrice: Money{"x", -1, 0}}.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want ValidationError", err)
	}
	var fields []string
	for _, v := range ve.Violations {
		fields = append(fields, v.Field)
	}
	want := []string{"product_id", "quantity", "unit_price.currency_code", "unit_price"}
	if !reflect.DeepEqual(fields, want) {
		t.Fatalf("fields = %v, want %v", fields, want)
	}
}

func TestValidateUserID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"u1", true}, {"alice@example.com", true}, {"a-b_c.d:e", true}, {strings.Repeat("u", 128), true},
		{"", false}, {strings.Repeat("u", 129), false}, {"a/b", false}, {"é", false}, {"a b", false}, {"cart-$all", false},
	} {
		err := ValidateUserID(tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateUserID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}

func TestRuleErrorMatchesSentinelByReason(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("handle: %w", ruleErrorf(ErrItemNotFound, "product %q is not in the cart", "x"))
	if !errors.Is(err, ErrItemNotFound) {
		t.Fatal("specific rule error does not match its sentinel")
	}
	if errors.Is(err, ErrCartEmpty) {
		t.Fatal("rule error matches a sentinel with another reason")
	}
}
