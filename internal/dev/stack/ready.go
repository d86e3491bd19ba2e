package stack

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// WaitReady returns once both services report SERVING on gRPC health, i.e.
// their stores answer, or when ctx ends or a part fails.
func (s *Stack) WaitReady(ctx context.Context) error {
	for _, addr := range []string{s.CommandAddr, s.QueryAddr} {
		if err := s.waitServing(ctx, addr); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) waitServing(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("stack: dial %s: %w", addr, err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: %s not serving: %w", addr, ctx.Err())
		case <-s.failed:
			return fmt.Errorf("stack: a part stopped: %w", s.Close())
		case <-tick.C:
		}
	}
}
