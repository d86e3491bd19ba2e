// Package grpccatalog prices products with a cart.v1.PriceService: the
// catalog adapter for when prices are owned by another service
// (--price-service ADDR). It is the only place that knows that service's
// messages; command-svc sees a command.Catalog.
//
// Each call has its own timeout, so that a slow catalog fails a command
// quickly instead of holding it until the caller's deadline; UNAVAILABLE
// and DEADLINE_EXCEEDED become cart.ErrUnavailable (the API answers
// UNAVAILABLE, retry later). The answers are checked like a catalog file:
// a price that breaks the domain's rules is an error, never handed on.
//
// Server is the other side: a PriceService over any command.Catalog, for
// the local stack and for testing the client on the real protocol.
package grpccatalog

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// DefaultTimeout bounds one GetPrices call when New is given none: a price
// lookup is a key read on the other side, so a second means it is in trouble.
const DefaultTimeout = time.Second

// Catalog is a command.Catalog backed by a PriceService.
type Catalog struct {
	client  cartv1.PriceServiceClient
	timeout time.Duration
}

var _ command.Catalog = (*Catalog)(nil)

// New returns a catalog that calls the PriceService on conn (the caller
// dials and closes it, with its own TLS and interceptors); timeout bounds
// each call, 0 meaning DefaultTimeout.
func New(conn grpc.ClientConnInterface, timeout time.Duration) *Catalog {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Catalog{client: cartv1.NewPriceServiceClient(conn), timeout: timeout}
}

// Prices implements command.Catalog with one GetPrices call. Products named
// twice are asked for once; an answer for a product that was not asked for,
// twice for one product, or with an invalid price is an error.
func (c *Catalog) Prices(ctx context.Context, productIDs []string) (map[string]cart.Money, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	asked := make(map[string]bool, len(productIDs))
	ids := make([]string, 0, len(productIDs))
	for _, id := range productIDs {
		if !asked[id] {
			asked[id] = true
			ids = append(ids, id)
		}
	}
	out := make(map[string]cart.Money, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.client.GetPrices(cctx, &cartv1.GetPricesRequest{ProductIds: ids})
	if err != nil {
		return nil, translate(ctx, cctx, err)
	}
	for _, p := range resp.GetPrices() {
		id := p.GetProductId()
		if !asked[id] {
			return nil, fmt.Errorf("price service: answered for product %q, which was not asked for", id)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("price service: answered twice for product %q", id)
		}
		if p.GetUnitPrice() == nil {
			return nil, fmt.Errorf("price service: no unit_price for product %q", id)
		}
		m := cart.Money{CurrencyCode: p.GetUnitPrice().GetCurrencyCode(), Units: p.GetUnitPrice().GetUnits(), Nanos: p.GetUnitPrice().GetNanos()}
		if v := cart.ValidateMoney("unit_price", m); len(v) > 0 {
			return nil, fmt.Errorf("price service: invalid price %s for product %q: %s: %s", m, id, v[0].Field, v[0].Description)
		}
		out[id] = m
	}
	return out, nil
}

// translate maps a failed call: the caller's own cancellation or deadline
// as itself, an outage or our own timeout as cart.ErrUnavailable, anything
// else (a bug on either side) as it is. ctx is the caller's, cctx the call's.
func translate(ctx, cctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("price service: %w", ctxErr)
	}
	// The server enforces the deadline too and may answer DEADLINE_EXCEEDED
	// a moment before the caller's context expires here: when the caller's
	// deadline was the call's, it is still the caller's.
	if status.Code(err) == codes.DeadlineExceeded {
		if d, ok := ctx.Deadline(); ok {
			if cd, _ := cctx.Deadline(); !cd.Before(d) {
				return fmt.Errorf("price service: %v: %w", err, context.DeadlineExceeded)
			}
		}
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("price service: %v: %w", err, cart.ErrUnavailable)
	}
	return fmt.Errorf("price service: %w", err)
}
