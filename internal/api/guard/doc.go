// Package guard holds the gRPC server's defences at the trust boundary that
// do not depend on who the caller is: requests that cannot be decoded, and
// callers that send too many requests.
//
// grpc-go decodes a request before any interceptor runs and reports a decode
// failure as INTERNAL, which blames the server for the caller's bytes and
// pages whoever watches server errors. [Decoder] moves the failure to the
// caller: its codec remembers the error instead of failing, and its
// interceptors answer INVALID_ARGUMENT before a handler sees the message.
//
// [Limiter] gives every principal a token bucket on the methods the caller
// of [NewLimiter] chooses and answers RESOURCE_EXHAUSTED with a RetryInfo
// saying when the next token is due. Memory stays bounded: idle buckets are
// dropped once they are full again, and the number of buckets is capped.
package guard
