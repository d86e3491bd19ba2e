package rpc

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMonitorHealthFollowsChecks(t *testing.T) {
	t.Parallel()
	a, b := health.NewServer(), health.NewServer()
	targets := []HealthTarget{{Server: a, Service: "svc.A"}, {Server: b, Service: "svc.B"}}
	var down atomic.Bool
	down.Store(true)
	var (
		mu      sync.Mutex
		changes []bool
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		MonitorHealth(ctx, 5*time.Millisecond, slog.New(slog.DiscardHandler), targets,
			func(serving, changed bool) {
				if changed {
					mu.Lock()
					changes = append(changes, serving)
					mu.Unlock()
				}
			},
			func(context.Context) error { return nil },
			func(context.Context) error {
				if down.Load() {
					return errors.New("store down")
				}
				return nil
			})
	}()

	waitStatus := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ok := true
			for _, tg := range targets {
				for _, svc := range []string{"", tg.Service} {
					resp, err := tg.Server.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
					if err != nil || resp.GetStatus() != want {
						ok = false
					}
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("health never became %v", want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitStatus(healthpb.HealthCheckResponse_NOT_SERVING)
	down.Store(false)
	waitStatus(healthpb.HealthCheckResponse_SERVING)
	down.Store(true)
	waitStatus(healthpb.HealthCheckResponse_NOT_SERVING)
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 3 || changes[0] || !changes[1] || changes[2] {
		t.Fatalf("reported changes = %v, want [false true false]", changes)
	}
}
