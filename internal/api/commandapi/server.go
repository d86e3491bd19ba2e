package commandapi

import (
	"context"
	"errors"
	"log/slog"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/auth"
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/command"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// Handler is what the command API needs of the write side; the
// server only translates, so that every rule lives in packages cart and
// command. *command.Handler implements it.
type Handler interface {
	Handle(ctx context.Context, env command.Envelope, cmd cart.Command) (command.Result, error)
}

var _ Handler = (*command.Handler)(nil)

// Server serves cart.v1.CartCommandService: it maps each request to a
// domain command plus its envelope (user, expected version, command ID,
// reason and the audit headers), and every error through rpc.ToStatus.
type Server struct {
	cartv1.UnimplementedCartCommandServiceServer
	commands Handler
	log      *slog.Logger
}

var _ cartv1.CartCommandServiceServer = (*Server)(nil)

// New returns the command API over commands; log receives the
// internal errors that callers only see as a generic message.
func New(commands Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{commands: commands, log: log}
}

// request is what every command request has in common.
type request interface {
	GetUserId() string
	GetCommandId() string
	GetReason() string
}

// handle authorizes the caller on the request's cart, builds the
// command's envelope (the user, expected version, command ID, reason, the
// verified principal and the audit headers) and runs the command. A caller
// who may not act on the cart is refused before anything is read.
func (s *Server) handle(ctx context.Context, req request, expected *int64, cmd cart.Command) (command.Result, error) {
	actor, err := auth.AuthorizeUser(ctx, req.GetUserId())
	if err != nil && !errors.Is(err, auth.ErrUserRequired) {
		return command.Result{}, rpc.ToStatus(ctx, s.log, err, commandErrors)
	}
	// A service that names no user goes on to validation, which reports the
	// missing user_id with every other bad field at once.
	env := command.Envelope{
		UserID:          actor.UserID,
		CommandID:       req.GetCommandId(),
		ExpectedVersion: expected,
		Principal:       actor.Principal,
		OnBehalfOf:      actor.OnBehalfOf,
		CorrelationID:   rpc.CorrelationID(ctx), // the one logged and returned to the caller
		CausationID:     rpc.FirstHeader(ctx, rpc.HeaderCausationID),
		Reason:          req.GetReason(),
	}
	res, err := s.commands.Handle(ctx, env, cmd)
	if err != nil {
		return command.Result{}, rpc.ToStatus(ctx, s.log, err, commandErrors)
	}
	return res, nil
}

// AddItem implements cartv1.CartCommandServiceServer.
func (s *Server) AddItem(ctx context.Context, req *cartv1.AddItemRequest) (*cartv1.AddItemResponse, error) {
	res, err := s.handle(ctx, req, req.ExpectedVersion, cart.AddItem{
		ProductID:  req.GetProductId(),
		Quantity:   int(req.GetQuantity()),
		ShownPrice: shownPriceFromProto(req.GetUnitPrice()),
	})
	if err != nil {
		return nil, err
	}
	return &cartv1.AddItemResponse{Version: res.Version}, nil
}

// RemoveItem implements cartv1.CartCommandServiceServer.
func (s *Server) RemoveItem(ctx context.Context, req *cartv1.RemoveItemRequest) (*cartv1.RemoveItemResponse, error) {
	res, err := s.handle(ctx, req, req.ExpectedVersion, cart.RemoveItem{ProductID: req.GetProductId()})
	if err != nil {
		return nil, err
	}
	return &cartv1.RemoveItemResponse{Version: res.Version}, nil
}

// ChangeItemQuantity implements cartv1.CartCommandServiceServer.
func (s *Server) ChangeItemQuantity(ctx context.Context, req *cartv1.ChangeItemQuantityRequest) (*cartv1.ChangeItemQuantityResponse, error) {
	res, err := s.handle(ctx, req, req.ExpectedVersion, cart.ChangeItemQuantity{
		ProductID: req.GetProductId(),
		Quantity:  int(req.GetQuantity()),
	})
	if err != nil {
		return nil, err
	}
	return &cartv1.ChangeItemQuantityResponse{Version: res.Version}, nil
}

// ClearCart implements cartv1.CartCommandServiceServer.
func (s *Server) ClearCart(ctx context.Context, req *cartv1.ClearCartRequest) (*cartv1.ClearCartResponse, error) {
	res, err := s.handle(ctx, req, req.ExpectedVersion, cart.ClearCart{})
	if err != nil {
		return nil, err
	}
	return &cartv1.ClearCartResponse{Version: res.Version}, nil
}

// CheckoutCart implements cartv1.CartCommandServiceServer. The checkout ID
// is derived from the command ID by the handler, so a resent checkout
// answers with the same ID, lines and total.
func (s *Server) CheckoutCart(ctx context.Context, req *cartv1.CheckoutCartRequest) (*cartv1.CheckoutCartResponse, error) {
	res, err := s.handle(ctx, req, req.ExpectedVersion, cart.CheckoutCart{AcceptPriceChanges: req.GetAcceptPriceChanges()})
	if err != nil {
		return nil, err
	}
	out := &cartv1.CheckoutCartResponse{Version: res.Version}
	if co := res.Checkout; co != nil {
		out.CheckoutId = co.CheckoutID
		out.Total = rpc.MoneyToProto(co.Total)
		out.Items = make([]*cartv1.CartItem, 0, len(co.Items))
		for _, it := range co.Items {
			out.Items = append(out.Items, rpc.ItemToProto(it))
		}
	}
	return out, nil
}

// moneyFromProto maps an API amount to the domain's; a missing amount is
// the zero value, which validation reports as a missing currency.
func moneyFromProto(m *cartv1.Money) cart.Money {
	return cart.Money{CurrencyCode: m.GetCurrencyCode(), Units: m.GetUnits(), Nanos: m.GetNanos()}
}

// shownPriceFromProto maps the price the app showed, which is optional: the
// line gets the catalog's price, and a shown price only has to match it.
func shownPriceFromProto(m *cartv1.Money) *cart.Money {
	if m == nil {
		return nil
	}
	p := moneyFromProto(m)
	return &p
}
