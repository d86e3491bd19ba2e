package standin

import (
	"fmt"
	"regexp"
	"strings"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
)

// defaultAllFilter is the server's DefaultAllFilterStrategy, applied to every
// $all read and subscription: it hides $epoch-information and the checkpoint
// and parked-message streams of persistent subscriptions to $all. Other
// system streams ($$<stream> metadata, tombstones' $streamDeleted records,
// …) are part of $all and reach consumers; stream-prefix filters such as
// "cart-" exclude them simply because "$..." does not start with the prefix.
func defaultAllFilter(r *record) bool {
	name := r.stream
	if name == "" || name[0] != '$' {
		return true
	}
	if name == epochStream {
		return false
	}
	const psAll = "$persistentsubscription-$all::"
	if strings.HasPrefix(name, psAll) && (strings.HasSuffix(name, "-checkpoint") || strings.HasSuffix(name, "-parked")) &&
		len(name) >= len(psAll)+len("-checkpoint") {
		return false
	}
	return true
}

// eventFilter is a server-side $all filter on stream name or event type, by
// prefixes or a regular expression. As in the server, a regex is searched for
// anywhere in the value (not anchored); the stand-in uses Go's RE2 syntax,
// which covers the expressions clients normally send but not .NET-only
// constructs such as look-arounds.
type eventFilter struct {
	onType   bool
	prefixes []string
	re       *regexp.Regexp
}

func newEventFilter(opts *api.ReadReq_Options_FilterOptions) (*eventFilter, error) {
	var expr *api.ReadReq_Options_FilterOptions_Expression
	f := &eventFilter{}
	switch v := opts.GetFilter().(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = v.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		expr, f.onType = v.EventType, true
	default:
		return nil, fmt.Errorf("filter needs a stream_identifier or event_type expression")
	}
	if expr.GetRegex() != "" {
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, fmt.Errorf("filter regex: %w", err)
		}
		f.re = re
		return f, nil
	}
	// No prefixes matches nothing, as in the server.
	f.prefixes = expr.GetPrefix()
	return f, nil
}

// allow reports whether a record passes the default $all filter and this one.
func (f *eventFilter) allow(r *record) bool {
	if !defaultAllFilter(r) {
		return false
	}
	if f == nil {
		return true
	}
	value := r.stream
	if f.onType {
		value = r.typ
	}
	if f.re != nil {
		return f.re.MatchString(value)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(value, p) {
			return true
		}
	}
	return false
}
