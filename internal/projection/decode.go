package projection

import (
	"github.com/acme/cart/internal/cart"
	"github.com/acme/cart/internal/eventlog"
)

// Decoder turns a stored event's type and data into a domain event. It is
// a seam so that a deploy can bring an upcaster (a decoder that also knows
// an old or new shape) and replay the events parked before it, and so that
// tests can simulate that deploy. cart.Unmarshal is the default.
type Decoder func(eventType string, data []byte) (cart.Event, error)

// DecodeEvent decodes ev with dec (nil: cart.Unmarshal). Metadata must parse
// too: an event whose audit trail is corrupt is treated like any other
// poison event rather than applied as if nothing were wrong. The projector
// and the parking lot's replay both decode through here, so that an event
// is accepted or refused by the same rules wherever it is applied.
func DecodeEvent(dec Decoder, ev eventlog.Event) (cart.Event, error) {
	if dec == nil {
		dec = cart.Unmarshal
	}
	e, err := dec(ev.Type, ev.Data)
	if err != nil {
		return nil, err
	}
	if _, err := cart.UnmarshalMetadata(ev.Metadata); err != nil {
		return nil, &cart.DecodeError{Type: ev.Type, Err: err}
	}
	return e, nil
}
