package filecatalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/catalog"
	"github.com/acme/cart/internal/catalog/catalogtest"
	"github.com/acme/cart/internal/catalog/filecatalog"
	"github.com/acme/cart/internal/command"
	"github.com/acme/cart/internal/testing/logtest"
)

func encode(t *testing.T, prices map[string]cart.Money) []byte {
	t.Helper()
	var f struct {
		Products []catalog.Product `json:"products"`
	}
	f.Products = []catalog.Product{}
	for id, p := range prices {
		f.Products = append(f.Products, catalog.Product{ProductID: id, UnitPrice: p})
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// write replaces the file as the docs say (temporary file, rename) and
// gives it a modification time of its own, so that a change is seen even
// on file systems with coarse timestamps.
var (
	clockMu sync.Mutex
	clock   = time.Now()
)

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	clockMu.Lock()
	clock = clock.Add(time.Second)
	at := clock
	clockMu.Unlock()
	if err := os.Chtimes(tmp, at, at); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, data []byte) (*filecatalog.Catalog, string, *logtest.Buffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.json")
	write(t, path, data)
	logs := &logtest.Buffer{}
	c, err := filecatalog.Open(path, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c, path, logs
}

func price(t *testing.T, c command.Catalog, id string) (cart.Money, bool) {
	t.Helper()
	got, err := c.Prices(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := got[id]
	return p, ok
}

func TestContract(t *testing.T) {
	t.Parallel()
	catalogtest.Run(t, func(t *testing.T, prices map[string]cart.Money) command.Catalog {
		c, _, _ := open(t, encode(t, prices))
		return c
	})
}

func TestTheDocumentedShape(t *testing.T) {
	t.Parallel()
	c, _, _ := open(t, []byte(`{"products":[{"product_id":"sku-1","unit_price":{"currency_code":"EUR","units":9,"nanos":990000000}}]}`))
	if p, ok := price(t, c, "sku-1"); !ok || p != (cart.Money{CurrencyCode: "EUR", Units: 9, Nanos: 990_000_000}) {
		t.Fatalf("sku-1 = %v, %v", p, ok)
	}
}

func TestOpenRejectsInvalidCatalogs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, data, want string }{
		{"not JSON", `{"products":[`, "not a catalog"},
		{"no list", `{}`, `no "products" list`},
		{"misspelt field", `{"products":[{"product_id":"sku-1","unitprice":{"currency_code":"EUR","units":1}}]}`, "unitprice"},
		{"data after the object", `{"products":[]} {}`, "data after"},
		{"duplicate", `{"products":[{"product_id":"sku-1","unit_price":{"currency_code":"EUR","units":1}},{"product_id":"sku-1","unit_price":{"currency_code":"EUR","units":2}}]}`, `product "sku-1": listed more than once`},
		{"made-up currency", `{"products":[{"product_id":"sku-7","unit_price":{"currency_code":"ZZZ","units":1}}]}`, `product "sku-7": unit_price.currency_code`},
		{"negative price", `{"products":[{"product_id":"sku-7","unit_price":{"currency_code":"EUR","units":-1}}]}`, `product "sku-7": unit_price: must not be negative`},
		{"nanos out of range", `{"products":[{"product_id":"sku-7","unit_price":{"currency_code":"EUR","nanos":1000000000}}]}`, `product "sku-7": unit_price.nanos`},
		{"no price", `{"products":[{"product_id":"sku-7"}]}`, `product "sku-7": unit_price.currency_code`},
		{"bad product id", `{"products":[{"product_id":"sku 7","unit_price":{"currency_code":"EUR","units":1}}]}`, `product #1: product_id`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "catalog.json")
			write(t, path, []byte(tt.data))
			_, err := filecatalog.Open(path, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	if _, err := filecatalog.Open(filepath.Join(t.TempDir(), "absent.json"), nil); err == nil {
		t.Fatal("Open of a missing file succeeded")
	}
}

func TestReloadsWhenTheFileChanges(t *testing.T) {
	t.Parallel()
	c, path, logs := open(t, encode(t, map[string]cart.Money{"sku-1": {CurrencyCode: "EUR", Units: 9, Nanos: 990_000_000}}))
	write(t, path, encode(t, map[string]cart.Money{"sku-1": {CurrencyCode: "EUR", Units: 10}, "sku-2": {CurrencyCode: "EUR", Units: 25}}))
	if p, _ := price(t, c, "sku-1"); p.Units != 10 {
		t.Fatalf("after the change sku-1 = %v, want EUR 10", p)
	}
	if _, ok := price(t, c, "sku-2"); !ok {
		t.Fatal("a product added to the file is not seen")
	}
	if !strings.Contains(logs.String(), "catalog reloaded") {
		t.Errorf("reload not logged: %s", logs)
	}
}

func TestBadReloadKeepsThePreviousCatalog(t *testing.T) {
	t.Parallel()
	good := map[string]cart.Money{"sku-1": {CurrencyCode: "EUR", Units: 9, Nanos: 990_000_000}}
	c, path, logs := open(t, encode(t, good))

	write(t, path, []byte(`{"products":[{"product_id":"sku-1","unit_price":{"currency_code":"ZZZ","units":1}}]}`))
	for range 3 {
		if p, ok := price(t, c, "sku-1"); !ok || p != good["sku-1"] {
			t.Fatalf("after a bad edit sku-1 = %v, %v; want the previous price", p, ok)
		}
	}
	if n := strings.Count(logs.String(), "invalid; keeping the previous catalog"); n != 1 {
		t.Errorf("bad reload logged %d times, want once per change:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "sku-1") {
		t.Errorf("the log does not name the product: %s", logs)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if p, ok := price(t, c, "sku-1"); !ok || p != good["sku-1"] {
		t.Fatalf("after the file went away sku-1 = %v, %v; want the previous price", p, ok)
	}
	if !strings.Contains(logs.String(), "unreadable") {
		t.Errorf("missing file not logged: %s", logs)
	}

	write(t, path, encode(t, map[string]cart.Money{"sku-1": {CurrencyCode: "EUR", Units: 11}}))
	if p, _ := price(t, c, "sku-1"); p.Units != 11 {
		t.Fatalf("after the fix sku-1 = %v, want EUR 11", p)
	}
}

func TestConcurrentLookupsDuringReloads(t *testing.T) {
	t.Parallel()
	c, path, _ := open(t, encode(t, map[string]cart.Money{"sku-1": {CurrencyCode: "EUR", Units: 1}}))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := c.Prices(context.Background(), []string{"sku-1"})
				if err != nil || got["sku-1"].CurrencyCode != "EUR" {
					t.Errorf("lookup during reloads = %v, %v", got, err)
					return
				}
			}
		})
	}
	for i := range 20 {
		write(t, path, encode(t, map[string]cart.Money{"sku-1": {CurrencyCode: "EUR", Units: int64(i + 2)}}))
	}
	close(stop)
	wg.Wait()
	if p, _ := price(t, c, "sku-1"); p.Units != 21 {
		t.Fatalf("after the last change sku-1 = %v, want EUR 21", p)
	}
}

// TestDevStackCatalog checks the sample catalog the local stack uses.
func TestDevStackCatalog(t *testing.T) {
	t.Parallel()
	c, err := filecatalog.Open(filepath.Join("..", "..", "dev", "stack", "sample-catalog.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]cart.Money{
		"sku-1":  {CurrencyCode: "EUR", Units: 9, Nanos: 990_000_000},
		"sku-2":  {CurrencyCode: "EUR", Units: 25},
		"sku-00": {CurrencyCode: "EUR", Units: 1},
		"sku-49": {CurrencyCode: "EUR", Units: 1},
	} {
		if p, ok := price(t, c, id); !ok || p != want {
			t.Errorf("%s = %v, %v; want %v", id, p, ok, want)
		}
	}
	for i := range 10 {
		if _, ok := price(t, c, fmt.Sprintf("sku-%d", i)); !ok {
			t.Errorf("sku-%d is missing", i)
		}
	}
}
