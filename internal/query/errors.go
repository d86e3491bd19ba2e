package query

import "errors"

// Errors of query handling; the API maps them to gRPC codes.
var (
	// ErrOutOfRange: a version past the cart's last one (OUT_OF_RANGE).
	ErrOutOfRange = errors.New("version is past the cart's last version")
	// ErrNotReady: the read model did not reach the asked-for version in
	// time (UNAVAILABLE: the caller should retry).
	ErrNotReady = errors.New("the read model has not reached the requested version yet")
	// ErrBadPageToken: a page token that this server did not issue for
	// this request (INVALID_ARGUMENT).
	ErrBadPageToken = errors.New("invalid page_token")
)
