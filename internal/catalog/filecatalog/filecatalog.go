// Package filecatalog prices products from a JSON file (--catalog FILE):
// the catalog adapter for the local stack and for deployments whose prices
// are published as a file. The file looks like
//
//	{"products":[{"product_id":"sku-1","unit_price":{"currency_code":"EUR","units":9,"nanos":990000000}}]}
//
// and is validated whole when opened: an unknown field, a bad product ID, a
// product listed twice or a price that breaks the domain's rules (including
// a currency that is not ISO 4217) is an error naming the product, so a
// service does not start on a broken catalog.
//
// The file is reloaded when it changes: every lookup compares its
// modification time and size with the last read (one stat, no watcher
// goroutine to stop). A changed file that is invalid, or a file that went
// away, is logged and the last good catalog stays in use, so that a bad
// edit cannot take prices down. Replace the file atomically (write a
// temporary file, rename it) so that a lookup never reads half of it.
package filecatalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/catalog"
	"github.com/acme/cart/internal/command"
)

// Catalog is a command.Catalog read from a file; safe for concurrent use.
type Catalog struct {
	path string
	log  *slog.Logger
	// reload serializes reading the file, so that a burst of lookups after
	// a change reads it once.
	reload sync.Mutex
	cur    atomic.Pointer[loaded]
}

var _ command.Catalog = (*Catalog)(nil)

// loaded is what the lookups use: the last good prices, and the stamp of
// the file as last seen, good or bad, so that a bad file is read (and
// logged) once per change rather than on every lookup.
type loaded struct {
	prices map[string]cart.Money
	seen   stamp
}

// stamp tells whether the file changed since it was read.
type stamp struct {
	modNanos int64
	size     int64
	missing  bool
}

func stampOf(fi os.FileInfo) stamp { return stamp{modNanos: fi.ModTime().UnixNano(), size: fi.Size()} }

// Open reads and validates the catalog at path; log receives reloads and
// failed reloads (nil: discarded).
func Open(path string, log *slog.Logger) (*Catalog, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("catalog file: %w", err)
	}
	prices, err := readFile(path)
	if err != nil {
		return nil, err
	}
	c := &Catalog{path: path, log: log}
	c.cur.Store(&loaded{prices: prices, seen: stampOf(fi)})
	log.Info("catalog loaded", "path", path, "products", len(prices))
	return c, nil
}

// Prices implements command.Catalog, from the file as it is now (or the last
// good version of it).
func (c *Catalog) Prices(ctx context.Context, productIDs []string) (map[string]cart.Money, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return catalog.Lookup(c.current(ctx).prices, productIDs), nil
}

// current returns the catalog to answer from, reading the file again first
// if it changed since it was last seen.
func (c *Catalog) current(ctx context.Context) *loaded {
	cur := c.cur.Load()
	now, err := c.stat()
	if now == cur.seen {
		return cur
	}
	c.reload.Lock()
	defer c.reload.Unlock()
	if cur = c.cur.Load(); now == cur.seen { // another lookup got here first
		return cur
	}
	next := &loaded{prices: cur.prices, seen: now}
	switch {
	case err != nil:
		c.log.ErrorContext(ctx, "catalog file unreadable; keeping the previous catalog", "path", c.path, "err", err)
	default:
		prices, err := readFile(c.path)
		if err != nil {
			c.log.ErrorContext(ctx, "catalog file changed but is invalid; keeping the previous catalog", "path", c.path, "err", err)
		} else {
			next.prices = prices
			c.log.InfoContext(ctx, "catalog reloaded", "path", c.path, "products", len(prices))
		}
	}
	c.cur.Store(next)
	return next
}

func (c *Catalog) stat() (stamp, error) {
	fi, err := os.Stat(c.path)
	if err != nil {
		return stamp{missing: true}, err
	}
	return stampOf(fi), nil
}

func readFile(path string) (map[string]cart.Money, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog file: %w", err)
	}
	prices, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("catalog file %s: %w", path, err)
	}
	return prices, nil
}

// file is the catalog file's shape; Products is a pointer so that a file
// without the list (e.g. "{}") is told apart from an empty catalog.
type file struct {
	Products *[]catalog.Product `json:"products"`
}

// Parse validates a catalog file's contents and returns its price list. It
// is strict, since a misspelt field would otherwise read as a missing price.
func Parse(data []byte) (map[string]cart.Money, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a catalog: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a catalog: data after the JSON object")
	}
	if f.Products == nil {
		return nil, errors.New(`not a catalog: no "products" list`)
	}
	return catalog.Index(*f.Products)
}
