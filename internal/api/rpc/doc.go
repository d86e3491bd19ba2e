// Package rpc is what the gRPC servers of both services share: the server
// options (keepalive that tolerates 10 s client pings, message limits,
// health, reflection), the interceptors (panic recovery, one log line per
// call), the health monitor, the serve-and-shut-down lifecycle, the mapping
// of the errors every service shares to status codes (ToStatus, which each
// service extends with a Mapping of its own errors), and the conversions of
// domain values that more than one API shows.
//
// Each service's API lives in its own package (commandapi, queryapi,
// adminapi), so that a binary links only the servers it runs.
package rpc
