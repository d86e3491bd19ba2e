package cart

import "fmt"

const nanosPerUnit = 1_000_000_000

// MaxUnitPriceUnits bounds a unit price so that no cart total can overflow
// int64 nanos: 50 lines × 99 × 1,000,000 units < 2^63 nanos.
const MaxUnitPriceUnits = 1_000_000

// Money is an amount in one currency, shaped like google.type.Money so that
// it crosses the API and the stored events without rounding.
type Money struct {
	CurrencyCode string `json:"currency_code"`
	Units        int64  `json:"units"`
	Nanos        int32  `json:"nanos"`
}

// nanos is the amount in 10^-9 units; validated amounts cannot overflow it.
func (m Money) nanos() int64 { return m.Units*nanosPerUnit + int64(m.Nanos) }

func moneyFromNanos(currency string, n int64) Money {
	return Money{CurrencyCode: currency, Units: n / nanosPerUnit, Nanos: int32(n % nanosPerUnit)}
}

// Times multiplies a unit price by a quantity, for line totals.
func (m Money) Times(q int) Money { return moneyFromNanos(m.CurrencyCode, m.nanos()*int64(q)) }

// String renders the amount for logs and error messages, e.g. "12.50 EUR".
func (m Money) String() string {
	return fmt.Sprintf("%d.%09d %s", m.Units, m.Nanos, m.CurrencyCode)
}

// ValidateMoney reports the problems of a price, naming fields as the API
// does (field is the price's own field name). It is exported so that the
// catalog adapters hold their prices to the same rules as the commands.
func ValidateMoney(field string, m Money) []FieldViolation { return validateMoney(field, m) }

// validateMoney reports the problems of a price given in a command, naming
// fields as the API does (field is the price's own field name).
func validateMoney(field string, m Money) []FieldViolation {
	var v []FieldViolation
	if !IsCurrencyCode(m.CurrencyCode) {
		v = append(v, FieldViolation{field + ".currency_code", "must be an active ISO 4217 currency code in upper case, e.g. EUR"})
	}
	if m.Units < 0 || m.Nanos < 0 {
		v = append(v, FieldViolation{field, "must not be negative"})
	}
	if m.Nanos > nanosPerUnit-1 {
		v = append(v, FieldViolation{field + ".nanos", "must be between 0 and 999999999"})
	}
	if m.Units > MaxUnitPriceUnits {
		v = append(v, FieldViolation{field + ".units", fmt.Sprintf("must be at most %d", MaxUnitPriceUnits)})
	}
	return v
}
