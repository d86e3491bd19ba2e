package loadgen

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

var errOdd = errors.New("odd")

func TestRunStopsAtMaxOps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		workers int
		maxOps  int
	}{
		{"one worker", 1, 17},
		{"more workers than ops", 8, 5},
		{"many ops over several workers", 4, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			seen := map[[2]int]bool{}
			res := Run(context.Background(), Config{Workers: tt.workers, Duration: time.Minute, MaxOps: tt.maxOps},
				func(_ context.Context, w, seq int) (time.Duration, error) {
					mu.Lock()
					defer mu.Unlock()
					if w < 0 || w >= tt.workers {
						t.Errorf("worker %d out of range", w)
					}
					if seen[[2]int{w, seq}] {
						t.Errorf("worker %d seq %d called twice", w, seq)
					}
					seen[[2]int{w, seq}] = true
					return time.Duration(len(seen)) * time.Microsecond, nil
				})
			if res.Ops != tt.maxOps || len(seen) != tt.maxOps {
				t.Fatalf("Ops = %d, calls = %d, want %d", res.Ops, len(seen), tt.maxOps)
			}
			if len(res.Latencies) != tt.maxOps || !slices.IsSorted(res.Latencies) {
				t.Errorf("latencies: %d samples, sorted %v", len(res.Latencies), slices.IsSorted(res.Latencies))
			}
			if res.Failed() != 0 {
				t.Errorf("Failed = %d, want 0", res.Failed())
			}
			// Every worker's seq runs 0, 1, 2, … without holes.
			for k := range seen {
				if k[1] > 0 && !seen[[2]int{k[0], k[1] - 1}] {
					t.Errorf("worker %d seq %d without seq %d", k[0], k[1], k[1]-1)
				}
			}
		})
	}
}

func TestRunCountsErrorsByClassAndKeepsOnlySuccessLatencies(t *testing.T) {
	t.Parallel()
	res := Run(context.Background(), Config{
		Workers: 1, Duration: time.Minute, MaxOps: 10,
		Classify: func(err error) string { return "c:" + err.Error() },
	}, func(_ context.Context, _, seq int) (time.Duration, error) {
		if seq%2 == 1 {
			return time.Hour, errOdd
		}
		return time.Duration(seq) * time.Millisecond, nil
	})
	if res.Ops != 5 || res.Failed() != 5 || res.Errors["c:odd"] != 5 {
		t.Fatalf("Ops %d, Failed %d, Errors %v; want 5 ok and 5 c:odd", res.Ops, res.Failed(), res.Errors)
	}
	if got := res.Summary().Max; got != 8*time.Millisecond {
		t.Errorf("Max = %v: a failed op's latency was recorded", got)
	}
}

func TestRunDefaultClassName(t *testing.T) {
	t.Parallel()
	res := Run(context.Background(), Config{Workers: 2, Duration: time.Minute, MaxOps: 4},
		func(context.Context, int, int) (time.Duration, error) { return 0, errOdd })
	if res.Errors["error"] != 4 || res.Ops != 0 {
		t.Errorf("Errors %v, Ops %d; want error=4, 0 ok", res.Errors, res.Ops)
	}
}

func TestRunStopsAfterDuration(t *testing.T) {
	t.Parallel()
	// Without a count bound only the duration ends the run; the op blocks
	// on nothing, so a run that ignored the duration would never return.
	res := Run(context.Background(), Config{Workers: 2, Duration: 20 * time.Millisecond},
		func(context.Context, int, int) (time.Duration, error) {
			time.Sleep(time.Millisecond)
			return time.Millisecond, nil
		})
	if res.Ops == 0 {
		t.Fatal("no op ran")
	}
	if res.Elapsed < 20*time.Millisecond {
		t.Errorf("Elapsed %v shorter than the duration", res.Elapsed)
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	res := Run(ctx, Config{Workers: 3, Duration: time.Hour}, func(ctx context.Context, _, seq int) (time.Duration, error) {
		if seq == 2 {
			cancel()
		}
		return 0, ctx.Err()
	})
	if res.Ops < 2 {
		t.Errorf("Ops = %d, want the ops before the cancel", res.Ops)
	}
}

func TestRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		res  Result
		want float64
	}{
		{"no time", Result{Ops: 5}, 0},
		{"per second", Result{Ops: 50, Elapsed: 2 * time.Second}, 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.res.Rate(); got != tt.want {
				t.Errorf("Rate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTimed(t *testing.T) {
	t.Parallel()
	d, err := Timed(func() error { time.Sleep(2 * time.Millisecond); return errOdd })
	if !errors.Is(err, errOdd) || d < 2*time.Millisecond {
		t.Errorf("Timed = %v, %v; want >= 2ms and the call's error", d, err)
	}
}

func TestRecorder(t *testing.T) {
	t.Parallel()
	r := NewRecorder(func(err error) string { return "x:" + err.Error() })
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%5 == 0 {
				r.Record(time.Hour, errOdd)
				return
			}
			r.Record(time.Duration(10-i)*time.Millisecond, nil)
		}()
	}
	wg.Wait()
	res := r.Result(time.Second)
	if res.Ops != 8 || res.Errors["x:odd"] != 2 || res.Elapsed != time.Second || !slices.IsSorted(res.Latencies) {
		t.Fatalf("Result = %+v", res)
	}
	// 1+2+3+4 + 6+7+8+9 ms
	if got := r.Busy(); got != 40*time.Millisecond {
		t.Errorf("Busy = %v, want 40ms", got)
	}
	r.Record(time.Millisecond, nil)
	if res.Ops != 8 || len(res.Latencies) != 8 {
		t.Errorf("a later Record changed an earlier Result: %+v", res)
	}
	def := NewRecorder(nil)
	def.Record(0, errOdd)
	if got := def.Result(0).Errors; got["error"] != 1 {
		t.Errorf("default class: %v, want error=1", got)
	}
}
