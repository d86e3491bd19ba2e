package querysvc

import (
	"time"

	"github.com/acme/cart/internal/metrics"
	"github.com/acme/cart/internal/readmodel"
	"github.com/acme/cart/internal/readside"
)

// projectionState is what query-svc's projection gauges read: the live
// projector's progress and the parking lot.
func projectionState(live *readside.Live, parking *readmodel.ParkingLot) metrics.ProjectionState {
	return metrics.ProjectionState{
		Checkpoint: func() uint64 {
			if c := live.Progress().Checkpoint; c != nil {
				return c.Commit
			}
			return 0
		},
		Lag: func() (int64, time.Duration) {
			pr := live.Progress()
			return pr.LagEvents, pr.Lag(time.Now())
		},
		Parked: parking.CountParked,
		Active: live.Active,
	}
}
