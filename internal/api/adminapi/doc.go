// Package adminapi serves cart.v1.CartAdminService, the operators' API of
// the read model: rebuild, verify, and the parked events. It runs on its
// own listener in query-svc, so that it can be kept off the network the
// other APIs face.
package adminapi
