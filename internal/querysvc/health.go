package querysvc

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/health"

	"github.com/acme/cart/internal/api/rpc"
	"github.com/acme/cart/internal/projection"
	"github.com/acme/cart/internal/readside"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// Health service names of the query API. GetCart is served from MongoDB
// and is only as good as the projection; history and time travel read
// EventStoreDB. The whole server ("") and the service name follow GetCart:
// it is the main call, and a balancer that checks either must not send it
// to a replica whose read model is still replaying or too far behind.
var (
	// HealthGetCart stands for GetCart: MongoDB answers and the projector
	// has caught up since start and lags by at most MaxLag.
	HealthGetCart = cartv1.CartQueryService_GetCart_FullMethodName[1:]
	// HealthGetCartHistory and HealthGetCartAsOf stand for the calls that
	// read EventStoreDB: it answers.
	HealthGetCartHistory = cartv1.CartQueryService_GetCartHistory_FullMethodName[1:]
	HealthGetCartAsOf    = cartv1.CartQueryService_GetCartAsOf_FullMethodName[1:]
)

// freshness is the health check of the projection: failing until the
// projector has caught up once since start, then while its lag exceeds
// maxLag, recovering only at half of it so that a lag hovering around the
// limit does not flap the health.
type freshness struct {
	progress func() projection.Progress
	maxLag   time.Duration
	now      func() time.Time

	mu       sync.Mutex
	started  bool // caught up at least once
	tooStale bool
}

func newFreshness(progress func() projection.Progress, maxLag time.Duration) *freshness {
	return &freshness{progress: progress, maxLag: maxLag, now: time.Now}
}

// check is a rpc.HealthCheck: nil while GetCart's answers are fresh enough.
func (f *freshness) check(context.Context) error {
	pr := f.progress()
	lag := pr.Lag(f.now())
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		if !pr.CaughtUp {
			return fmt.Errorf("catching up after start (checkpoint %s, %d events behind at least, %v behind)",
				positionString(pr.Checkpoint), pr.LagEvents, lag.Round(time.Millisecond))
		}
		f.started = true
	}
	limit := f.maxLag
	if f.tooStale {
		limit = f.maxLag / 2
	}
	f.tooStale = lag > limit
	if f.tooStale {
		return fmt.Errorf("lag %v over max-lag %v (%d events at least)", lag.Round(time.Millisecond), f.maxLag, pr.LagEvents)
	}
	return nil
}

// healthGroups are the health names of the query API and what each needs:
// open says whether the read model's active collection is known, without
// which GetCart cannot answer however fresh the projection is.
func healthGroups(srv *health.Server, mongoPing, esPing func(context.Context) error, open func() bool, fresh *freshness) []rpc.HealthGroup {
	mongo := rpc.HealthCheck{Name: "mongodb", Check: mongoPing}
	es := rpc.HealthCheck{Name: "eventstoredb", Check: esPing}
	readModel := rpc.HealthCheck{Name: "read model", Check: func(context.Context) error {
		if !open() {
			return readside.ErrNotOpen
		}
		return nil
	}}
	proj := rpc.HealthCheck{Name: "projection", Check: fresh.check}
	return []rpc.HealthGroup{
		{Server: srv, Names: []string{"", cartv1.CartQueryService_ServiceDesc.ServiceName, HealthGetCart}, Checks: []rpc.HealthCheck{mongo, readModel, proj}},
		{Server: srv, Names: []string{HealthGetCartHistory, HealthGetCartAsOf}, Checks: []rpc.HealthCheck{es}},
	}
}
