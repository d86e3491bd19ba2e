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

// add is an AddItem as the handler passes it on: priced by the catalog,
// with no price shown by the app.
func add(product string, quantity int, catalog Money) AddItem {
	return AddItem{ProductID: product, Quantity: quantity, CatalogPrice: &catalog}
}

// shown is an AddItem whose app showed a price.
func shown(product string, quantity int, shown, catalog Money) AddItem {
	return AddItem{ProductID: product, Quantity: quantity, ShownPrice: &shown, CatalogPrice: &catalog}
}

// fullCart has MaxLines distinct products, one of each.
func fullCart() []Event {
	ev := make([]Event, MaxLines)
	for i := range ev {
		ev[i] = ItemAdded{ProductID: fmt.Sprintf("p%d", i), Quantity: 1, UnitPrice: eur(1, 0)}
	}
	return ev
}

// errCatalog stands for "an error of the catalog, not of the caller".
var errCatalog = errors.New("catalog error")

func TestDecide(t *testing.T) {
	t.Parallel()
	added := ItemAdded{ProductID: "sku-1", Quantity: 2, UnitPrice: eur(10, 500_000_000)}
	two := []Event{added, ItemAdded{"sku-2", 1, eur(0, 250_000_000)}}
	// prices are the catalog's current prices, unchanged since added.
	prices := map[string]Money{"sku-1": eur(10, 500_000_000), "sku-2": eur(0, 250_000_000)}
	// risen has sku-1 10.50 → 11 and sku-2 unchanged.
	risen := map[string]Money{"sku-1": eur(11, 0), "sku-2": eur(0, 250_000_000)}
	tests := []struct {
		name    string
		given   []Event
		when    Command
		then    []Event
		wantErr error
		// field that a ValidationError must name, when wantErr is a validation error.
		field string
	}{
		{name: "add to empty cart", when: add("sku-1", 2, eur(10, 500_000_000)), then: []Event{added}},
		{name: "add same product adds quantity and takes latest price", given: []Event{added},
			when: add("sku-1", 3, eur(9, 0)), then: []Event{ItemAdded{"sku-1", 3, eur(9, 0)}}},
		{name: "add up to the quantity limit", given: []Event{ItemAdded{"sku-1", 98, eur(1, 0)}},
			when: add("sku-1", 1, eur(1, 0)), then: []Event{ItemAdded{"sku-1", 1, eur(1, 0)}}},
		{name: "add past the quantity limit", given: []Event{ItemAdded{"sku-1", 98, eur(1, 0)}},
			when: add("sku-1", 2, eur(1, 0)), wantErr: ErrQuantityLimit},
		{name: "add a 51st line", given: fullCart(), when: add("new", 1, eur(1, 0)), wantErr: ErrLineLimit},
		{name: "add to an existing line of a full cart", given: fullCart(), when: add("p7", 1, eur(1, 0)),
			then: []Event{ItemAdded{"p7", 1, eur(1, 0)}}},
		{name: "add in another currency", given: []Event{added},
			when: add("sku-2", 1, Money{"USD", 1, 0}), wantErr: ErrCurrencyMismatch},
		{name: "another currency after the cart was cleared", given: []Event{added, CartCleared{}},
			when: add("sku-2", 1, Money{"USD", 1, 0}), then: []Event{ItemAdded{"sku-2", 1, Money{"USD", 1, 0}}}},
		{name: "add free item", when: add("gift", 1, eur(0, 0)), then: []Event{ItemAdded{"gift", 1, eur(0, 0)}}},
		{name: "add zero quantity", when: add("sku-1", 0, eur(1, 0)), wantErr: &ValidationError{}, field: "quantity"},
		{name: "add 100 at once", when: add("sku-1", 100, eur(1, 0)), wantErr: &ValidationError{}, field: "quantity"},
		{name: "add negative price", when: shown("sku-1", 1, eur(-1, 0), eur(1, 0)), wantErr: &ValidationError{}, field: "unit_price"},
		{name: "add bad currency", when: shown("sku-1", 1, Money{"eur", 1, 0}, eur(1, 0)), wantErr: &ValidationError{}, field: "unit_price.currency_code"},
		{name: "add a currency that is not ISO 4217", when: shown("sku-1", 1, Money{"ZZZ", 1, 0}, eur(1, 0)), wantErr: &ValidationError{}, field: "unit_price.currency_code"},
		{name: "add nanos out of range", when: shown("sku-1", 1, eur(1, 1_000_000_000), eur(1, 0)), wantErr: &ValidationError{}, field: "unit_price.nanos"},
		{name: "add price above limit", when: shown("sku-1", 1, eur(MaxUnitPriceUnits+1, 0), eur(1, 0)), wantErr: &ValidationError{}, field: "unit_price.units"},
		{name: "add empty product", when: add("", 1, eur(1, 0)), wantErr: &ValidationError{}, field: "product_id"},
		{name: "add product with a space", when: add("a b", 1, eur(1, 0)), wantErr: &ValidationError{}, field: "product_id"},
		{name: "add product id too long", when: add(strings.Repeat("x", 129), 1, eur(1, 0)), wantErr: &ValidationError{}, field: "product_id"},
		{name: "add product id of 128", when: add(strings.Repeat("x", 128), 1, eur(1, 0)), then: []Event{ItemAdded{strings.Repeat("x", 128), 1, eur(1, 0)}}},
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
			when: CheckoutCart{CheckoutID: "co-1", Prices: prices},
			then: []Event{CartCheckedOut{"co-1", []Item{{"sku-1", 2, eur(10, 500_000_000)}, {"sku-2", 1, eur(0, 250_000_000)}}, eur(21, 250_000_000)}}},
		{name: "checkout empty", when: CheckoutCart{CheckoutID: "co-1", Prices: prices}, wantErr: ErrCartEmpty},
		{name: "checkout twice", given: []Event{added, CartCheckedOut{"co-1", nil, eur(21, 0)}}, when: CheckoutCart{CheckoutID: "co-2", Prices: prices}, wantErr: ErrCartEmpty},
		{name: "add at the catalog price when the app showed none", when: add("sku-1", 1, eur(9, 990_000_000)),
			then: []Event{ItemAdded{"sku-1", 1, eur(9, 990_000_000)}}},
		{name: "add with the shown price equal to the catalog's", when: shown("sku-1", 1, eur(9, 990_000_000), eur(9, 990_000_000)),
			then: []Event{ItemAdded{"sku-1", 1, eur(9, 990_000_000)}}},
		{name: "add with a shown price that is no longer the catalog's", when: shown("sku-1", 1, eur(9, 990_000_000), eur(10, 490_000_000)),
			wantErr: &PriceChangedError{Changes: []PriceChange{{"sku-1", eur(9, 990_000_000), eur(10, 490_000_000)}}}},
		{name: "add with a shown price in another currency", when: shown("sku-1", 1, Money{"USD", 9, 990_000_000}, eur(9, 990_000_000)),
			wantErr: &PriceChangedError{Changes: []PriceChange{{"sku-1", Money{"USD", 9, 990_000_000}, eur(9, 990_000_000)}}}},
		{name: "price changed is told before other rules", given: []Event{ItemAdded{"sku-1", 98, eur(1, 0)}}, when: shown("sku-1", 5, eur(1, 0), eur(2, 0)),
			wantErr: &PriceChangedError{Changes: []PriceChange{{"sku-1", eur(1, 0), eur(2, 0)}}}},
		{name: "add a product the catalog does not know", when: AddItem{ProductID: "gone", Quantity: 1},
			wantErr: &ProductNotFoundError{ProductIDs: []string{"gone"}}},
		{name: "add with an invalid catalog price is not the caller's fault", when: add("sku-1", 1, Money{"ZZZ", 1, 0}), wantErr: errCatalog},
		{name: "add a known product at the catalog price in another currency", given: []Event{added}, when: add("sku-2", 1, Money{"USD", 1, 0}), wantErr: ErrCurrencyMismatch},
		{name: "checkout with a line whose price changed", given: two, when: CheckoutCart{CheckoutID: "co-1", Prices: risen},
			wantErr: &PriceChangedError{Changes: []PriceChange{{"sku-1", eur(10, 500_000_000), eur(11, 0)}}}},
		{name: "checkout with every line's price changed lists them all", given: two,
			when:    CheckoutCart{CheckoutID: "co-1", Prices: map[string]Money{"sku-1": eur(9, 0), "sku-2": eur(1, 0)}},
			wantErr: &PriceChangedError{Changes: []PriceChange{{"sku-1", eur(10, 500_000_000), eur(9, 0)}, {"sku-2", eur(0, 250_000_000), eur(1, 0)}}}},
		{name: "checkout accepting changed prices records the repricing first", given: two,
			when: CheckoutCart{CheckoutID: "co-1", AcceptPriceChanges: true, Prices: risen},
			then: []Event{
				ItemRepriced{"sku-1", eur(10, 500_000_000), eur(11, 0)},
				CartCheckedOut{"co-1", []Item{{"sku-1", 2, eur(11, 0)}, {"sku-2", 1, eur(0, 250_000_000)}}, eur(22, 250_000_000)},
			}},
		{name: "checkout accepting when nothing changed records no repricing", given: two,
			when: CheckoutCart{CheckoutID: "co-1", AcceptPriceChanges: true, Prices: prices},
			then: []Event{CartCheckedOut{"co-1", []Item{{"sku-1", 2, eur(10, 500_000_000)}, {"sku-2", 1, eur(0, 250_000_000)}}, eur(21, 250_000_000)}}},
		{name: "checkout at prices repriced before", given: append(two[:2:2], ItemRepriced{"sku-1", eur(10, 500_000_000), eur(11, 0)}),
			when: CheckoutCart{CheckoutID: "co-1", Prices: risen},
			then: []Event{CartCheckedOut{"co-1", []Item{{"sku-1", 2, eur(11, 0)}, {"sku-2", 1, eur(0, 250_000_000)}}, eur(22, 250_000_000)}}},
		{name: "checkout with a product the catalog dropped", given: two, when: CheckoutCart{CheckoutID: "co-1", AcceptPriceChanges: true, Prices: map[string]Money{"sku-1": eur(10, 500_000_000)}},
			wantErr: &ProductNotFoundError{ProductIDs: []string{"sku-2"}}},
		{name: "checkout without prices", given: two, when: CheckoutCart{CheckoutID: "co-1"},
			wantErr: &ProductNotFoundError{ProductIDs: []string{"sku-1", "sku-2"}}},
		{name: "checkout accepting a price in another currency for one line", given: two,
			when:    CheckoutCart{CheckoutID: "co-1", AcceptPriceChanges: true, Prices: map[string]Money{"sku-1": {"USD", 12, 0}, "sku-2": eur(0, 250_000_000)}},
			wantErr: ErrCurrencyMismatch},
		{name: "checkout accepting every line moved to another currency", given: two,
			when: CheckoutCart{CheckoutID: "co-1", AcceptPriceChanges: true, Prices: map[string]Money{"sku-1": {"USD", 12, 0}, "sku-2": {"USD", 1, 0}}},
			then: []Event{
				ItemRepriced{"sku-1", eur(10, 500_000_000), Money{"USD", 12, 0}},
				ItemRepriced{"sku-2", eur(0, 250_000_000), Money{"USD", 1, 0}},
				CartCheckedOut{"co-1", []Item{{"sku-1", 2, Money{"USD", 12, 0}}, {"sku-2", 1, Money{"USD", 1, 0}}}, Money{"USD", 25, 0}},
			}},
		{name: "checkout with an invalid catalog price", given: two,
			when: CheckoutCart{CheckoutID: "co-1", Prices: map[string]Money{"sku-1": eur(-1, 0), "sku-2": eur(0, 250_000_000)}}, wantErr: errCatalog},
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
			var (
				ve  *ValidationError
				pce *PriceChangedError
				pnf *ProductNotFoundError
			)
			switch {
			case tt.wantErr == errCatalog:
				var re *RuleError
				if err == nil || errors.As(err, &re) || errors.As(err, &ve) {
					t.Fatalf("err = %v, want an error that is neither a rule nor a validation error", err)
				}
			case errors.As(tt.wantErr, &pce):
				want := pce
				if !errors.As(err, &pce) || !reflect.DeepEqual(pce, want) {
					t.Fatalf("err = %#v, want %#v", err, want)
				}
				if !errors.Is(err, ErrPriceChanged) {
					t.Fatalf("err = %v does not match ErrPriceChanged", err)
				}
			case errors.As(tt.wantErr, &pnf):
				want := pnf
				if !errors.As(err, &pnf) || !reflect.DeepEqual(pnf, want) {
					t.Fatalf("err = %#v, want %#v", err, want)
				}
				if !errors.Is(err, ErrProductNotFound) {
					t.Fatalf("err = %v does not match ErrProductNotFound", err)
				}
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
	err := AddItem{ProductID: "", Quantity: 0, ShownPrice: &Money{"x", -1, 0}}.Validate()
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
		{"u1", true}, {"alice@example.com", true}, {"a-b_c.d:e", true}, {"auth0|5f7c8ec7c33c6c004bbafe82", true}, {strings.Repeat("u", 128), true},
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
