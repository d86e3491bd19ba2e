package cart

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ContentType is how events and metadata are stored: JSON, so that
// EventStoreDB's UI and server-side projections can read them.
const ContentType = "application/json"

// Metadata travels with every stored event: it is the audit trail's "who,
// why and when", and the command ID that makes retried commands idempotent.
type Metadata struct {
	CommandID     string    `json:"command_id"`
	CommandType   string    `json:"command_type"`
	CommandHash   string    `json:"command_hash,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	Principal     string    `json:"principal,omitempty"`
	OnBehalfOf    string    `json:"on_behalf_of,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	Time          time.Time `json:"time"`
	// TraceParent and TraceState are the W3C trace context of the append
	// that wrote the event (empty when tracing was off), so that the
	// projector's span for the event links back to the command's trace.
	// Readers must not require them: older events have none.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
}

// ErrUnknownEventType is returned for a stored type this code does not know,
// e.g. one written by a newer version; readers must not skip it silently.
var ErrUnknownEventType = errors.New("unknown event type")

// DecodeError is a stored event that cannot be turned into an Event: an
// unknown type, JSON that does not parse, or data that breaks the invariants
// every stored event satisfies. The projector parks such events.
type DecodeError struct {
	Type string
	Err  error
}

// Error names the event type, since that is what an operator looks up first.
func (e *DecodeError) Error() string { return fmt.Sprintf("decode %s event: %v", e.Type, e.Err) }

// Unwrap lets callers test for ErrUnknownEventType with errors.Is.
func (e *DecodeError) Unwrap() error { return e.Err }

// Marshal encodes an event's data for storage.
func Marshal(e Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", e.Type(), err)
	}
	return b, nil
}

// Unmarshal decodes a stored event by its type name. Unknown fields are
// ignored (a newer writer may add some); missing required data is an error.
// This is also where an old event shape would be upcast to the current one.
func Unmarshal(eventType string, data []byte) (Event, error) {
	var (
		e   Event
		err error
	)
	switch eventType {
	case TypeItemAdded:
		e, err = decode[ItemAdded](data)
	case TypeItemRemoved:
		e, err = decode[ItemRemoved](data)
	case TypeItemQuantityChanged:
		e, err = decode[ItemQuantityChanged](data)
	case TypeCartCleared:
		e, err = decode[CartCleared](data)
	case TypeCartCheckedOut:
		e, err = decode[CartCheckedOut](data)
	case TypeItemRepriced:
		e, err = decode[ItemRepriced](data)
	default:
		return nil, &DecodeError{Type: eventType, Err: ErrUnknownEventType}
	}
	if err == nil {
		err = checkStored(e)
	}
	if err != nil {
		return nil, &DecodeError{Type: eventType, Err: err}
	}
	return e, nil
}

func decode[T Event](data []byte) (T, error) {
	var v T
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	err := json.Unmarshal(data, &v)
	return v, err
}

// checkStored enforces what any correctly written event satisfies, so that a
// corrupt or hand-written event is caught at the boundary rather than
// turning into a silently wrong cart.
func checkStored(e Event) error {
	switch e := e.(type) {
	case ItemAdded:
		if e.ProductID == "" || e.Quantity < 1 {
			return errors.New("product_id and a positive quantity are required")
		}
	case ItemRemoved:
		if e.ProductID == "" {
			return errors.New("product_id is required")
		}
	case ItemQuantityChanged:
		if e.ProductID == "" || e.Quantity < 1 {
			return errors.New("product_id and a positive quantity are required")
		}
	case ItemRepriced:
		if e.ProductID == "" || e.NewUnitPrice.CurrencyCode == "" {
			return errors.New("product_id and new_unit_price are required")
		}
	}
	return nil
}

// MarshalMetadata encodes metadata for storage.
func MarshalMetadata(m Metadata) ([]byte, error) { return json.Marshal(m) }

// UnmarshalMetadata decodes stored metadata. Events written by other tools
// may have none; that gives zero Metadata, not an error.
func UnmarshalMetadata(b []byte) (Metadata, error) {
	var m Metadata
	if len(bytes.TrimSpace(b)) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Metadata{}, fmt.Errorf("decode metadata: %w", err)
	}
	return m, nil
}
