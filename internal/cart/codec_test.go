package cart

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for _, e := range []Event{
		ItemAdded{"sku-1", 2, eur(3, 5)},
		ItemRemoved{"sku-1"},
		ItemQuantityChanged{"sku-1", 4},
		CartCleared{},
		CartCheckedOut{"co", []Item{{"sku-1", 2, eur(3, 5)}}, eur(6, 10)},
		ItemRepriced{"sku-1", eur(3, 5), eur(4, 0)},
	} {
		b, err := Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(e.Type(), b)
		if err != nil {
			t.Fatalf("Unmarshal(%s, %s): %v", e.Type(), b, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip of %s = %#v, want %#v", b, got, e)
		}
	}
}

// TestStoredShape pins the JSON contract documented in docs/events.md: a
// change here breaks every reader of the log.
func TestStoredShape(t *testing.T) {
	t.Parallel()
	b, err := Marshal(ItemAdded{"sku-1", 2, eur(3, 5)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"product_id":"sku-1","quantity":2,"unit_price":{"currency_code":"EUR","units":3,"nanos":5}}`
	if string(b) != want {
		t.Fatalf("stored = %s, want %s", b, want)
	}
}

// TestStoredShapeItemRepriced pins ItemRepriced's JSON (docs/events.md).
func TestStoredShapeItemRepriced(t *testing.T) {
	t.Parallel()
	b, err := Marshal(ItemRepriced{"sku-1", eur(9, 990_000_000), eur(10, 490_000_000)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"product_id":"sku-1","old_unit_price":{"currency_code":"EUR","units":9,"nanos":990000000},"new_unit_price":{"currency_code":"EUR","units":10,"nanos":490000000}}`
	if string(b) != want {
		t.Fatalf("stored = %s, want %s", b, want)
	}
	if TypeItemRepriced != "ItemRepriced" {
		t.Fatalf("type name = %q", TypeItemRepriced)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, typ, data string
		unknown         bool
	}{
		{"unknown type", "ItemGiftWrapped", `{}`, true},
		{"bad json", TypeItemAdded, `{"product_id":`, false},
		{"wrong field type", TypeItemAdded, `{"product_id":5,"quantity":1}`, false},
		{"missing product", TypeItemAdded, `{"quantity":1}`, false},
		{"zero quantity", TypeItemQuantityChanged, `{"product_id":"a","quantity":0}`, false},
		{"removed without product", TypeItemRemoved, `{}`, false},
		{"repriced without product", TypeItemRepriced, `{"new_unit_price":{"currency_code":"EUR","units":1}}`, false},
		{"repriced without new price", TypeItemRepriced, `{"product_id":"a"}`, false},
	} {
		_, err := Unmarshal(tt.typ, []byte(tt.data))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: err = %v, want DecodeError", tt.name, err)
			continue
		}
		if errors.Is(err, ErrUnknownEventType) != tt.unknown {
			t.Errorf("%s: unknown = %v, want %v", tt.name, !tt.unknown, tt.unknown)
		}
	}
}

func TestUnmarshalIgnoresNewFields(t *testing.T) {
	t.Parallel()
	got, err := Unmarshal(TypeItemRemoved, []byte(`{"product_id":"a","note":"added by v2"}`))
	if err != nil || got != (ItemRemoved{"a"}) {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	m := Metadata{CommandID: "c", CommandType: "AddItem", CommandHash: "h", CorrelationID: "k", CausationID: "z", Principal: "alice", Reason: "why", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	b, err := MarshalMetadata(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalMetadata(b)
	if err != nil || got != m {
		t.Fatalf("got %+v, %v", got, err)
	}
	if got, err := UnmarshalMetadata(nil); err != nil || got != (Metadata{}) {
		t.Fatalf("empty metadata: %+v, %v", got, err)
	}
	if _, err := UnmarshalMetadata([]byte("{")); err == nil {
		t.Fatal("bad metadata decoded")
	}
}
