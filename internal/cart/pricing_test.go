package cart

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPriceErrorsReadAsRuleErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err    error
		reason string
		target error
		text   string
	}{
		{&PriceChangedError{Changes: []PriceChange{{"sku-1", eur(9, 990_000_000), eur(10, 0)}}}, "PRICE_CHANGED", ErrPriceChanged, "sku-1"},
		{&ProductNotFoundError{ProductIDs: []string{"sku-9"}}, "PRODUCT_NOT_FOUND", ErrProductNotFound, `"sku-9"`},
		{&ProductNotFoundError{ProductIDs: []string{"a", "b"}}, "PRODUCT_NOT_FOUND", ErrProductNotFound, `"a" "b"`},
	} {
		err := fmt.Errorf("AddItem: %w", tt.err)
		var re *RuleError
		if !errors.As(err, &re) || re.Reason != tt.reason || re.Message != tt.err.Error() {
			t.Errorf("%v: as RuleError = %+v, want reason %s and the same message", tt.err, re, tt.reason)
		}
		if !errors.Is(err, tt.target) || errors.Is(err, ErrCartEmpty) {
			t.Errorf("%v: does not match its sentinel alone", tt.err)
		}
		if !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%v: message does not name %s", tt.err, tt.text)
		}
	}
}

func TestActiveCurrencies(t *testing.T) {
	t.Parallel()
	codes := make([]string, 0, len(activeCurrencies))
	for c := range activeCurrencies {
		if len(c) != 3 || strings.ToUpper(c) != c {
			t.Errorf("malformed code %q", c)
		}
		codes = append(codes, c)
	}
	if len(codes) < 150 {
		t.Errorf("only %d codes: table truncated?", len(codes))
	}
	for _, c := range []string{"EUR", "USD", "GBP", "JPY", "CHF", "XCG", "ZWG"} {
		if !IsCurrencyCode(c) {
			t.Errorf("%s is not accepted", c)
		}
	}
	for _, c := range []string{"ZZZ", "XXX", "XTS", "XAU", "HRK", "eur", "EU", "EURO", ""} {
		if IsCurrencyCode(c) {
			t.Errorf("%s is accepted", c)
		}
	}
	if v := ValidateMoney("unit_price", Money{"ZZZ", 1, 0}); len(v) != 1 || v[0].Field != "unit_price.currency_code" {
		t.Errorf("ValidateMoney(ZZZ) = %+v", v)
	}
}
