package cart

import "strings"

// activeCurrencies are the ISO 4217 codes of the currencies in circulation
// that a product can be priced in. It is an explicit table rather than a
// "three capital letters" check because a made-up code (ZZZ) would pass that
// check and then fail at payment, after the user checked out.
//
// Left out on purpose: fund codes (e.g. BOV, CHE, CLF, USN), precious
// metals (XAU, XAG, XPT, XPD), the SDR and bond-market units (XDR, XSU, XUA,
// XBA-XBD), and the testing and "no currency" codes (XTS, XXX); nothing is
// sold in them. Withdrawn codes are not here either (e.g. HRK, Croatia's kuna
// before the euro; BGN, Bulgaria's lev before the euro in 2026; ANG,
// replaced by XCG; ZWL, replaced by ZWG; SLL, replaced by SLE).
//
// Keep it sorted; TestActiveCurrencies checks the shape of every entry.
// Updating it is a code change on purpose: a currency appearing or going away
// is rare and worth a review.
var activeCurrencies = makeSet(strings.Fields(`
	AED AFN ALL AMD AOA ARS AUD AWG AZN
	BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
	CAD CDF CHF CLP CNY COP CRC CUP CVE CZK
	DJF DKK DOP DZD
	EGP ERN ETB EUR
	FJD FKP
	GBP GEL GHS GIP GMD GNF GTQ GYD
	HKD HNL HTG HUF
	IDR ILS INR IQD IRR ISK
	JMD JOD JPY
	KES KGS KHR KMF KPW KRW KWD KYD KZT
	LAK LBP LKR LRD LSL LYD
	MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN
	NAD NGN NIO NOK NPR NZD
	OMR
	PAB PEN PGK PHP PKR PLN PYG
	QAR
	RON RSD RUB RWF
	SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL
	THB TJS TMT TND TOP TRY TTD TWD TZS
	UAH UGX USD UYU UZS
	VED VES VND VUV
	WST
	XAF XCD XCG XOF XPF
	YER
	ZAR ZMW ZWG
`))

func makeSet(codes []string) map[string]struct{} {
	m := make(map[string]struct{}, len(codes))
	for _, c := range codes {
		m[c] = struct{}{}
	}
	return m
}

// IsCurrencyCode tells whether s is an active ISO 4217 code that prices may
// be given in; the catalog adapters check their prices with it too, so that
// a bad catalog entry is caught when it is loaded, not when a user adds it.
func IsCurrencyCode(s string) bool {
	_, ok := activeCurrencies[s]
	return ok
}
