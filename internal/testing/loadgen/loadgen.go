// Package loadgen drives an operation from a fixed number of concurrent
// workers, bounded both in time and in count, and summarises the latencies
// it measured. It is the measuring core of cmd/dev/cartbench, kept apart so
// that the statistics can be tested without starting the product, and so
// that it knows nothing of gRPC or carts: the caller decides what one
// operation is, what its latency is and how its errors are named.
package loadgen

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Op performs one operation for worker (0-based) as its seq-th operation
// (0-based, per worker) and returns the latency to record. The op measures
// the latency itself, rather than Run timing the call, so that work around
// the measured call (keeping a cart within its limits, say) stays out of
// the numbers, and so that a latency can be something other than a call's
// duration (the time until a write becomes visible). A failed op's latency
// is not recorded; its error is counted.
type Op func(ctx context.Context, worker, seq int) (time.Duration, error)

// Config bounds a run. Both bounds apply, whichever comes first, so a
// scenario can never run away in time or in memory (every latency is kept).
type Config struct {
	// Workers is how many goroutines call the op concurrently (at least 1).
	Workers int
	// Duration is how long workers keep starting operations; operations in
	// flight when it ends still finish and count.
	Duration time.Duration
	// MaxOps bounds the operations started by all workers together; 0
	// means no bound other than Duration.
	MaxOps int
	// Classify names an error for the error counts, e.g. by gRPC code;
	// nil names every error "error".
	Classify func(error) string
}

// Result is what a run measured.
type Result struct {
	// Ops is how many operations succeeded.
	Ops int
	// Errors counts failed operations by Config.Classify's name.
	Errors map[string]int
	// Elapsed runs from the start of the first worker to the end of the
	// last one's last operation.
	Elapsed time.Duration
	// Latencies of the successful operations, sorted ascending.
	Latencies []time.Duration
}

// Failed is the number of failed operations.
func (r Result) Failed() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// Rate is successful operations per second of elapsed time.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Summary returns the latency percentiles of the run.
func (r Result) Summary() Summary { return Summarize(r.Latencies) }

// Run calls op from cfg.Workers goroutines until cfg.Duration has passed,
// cfg.MaxOps operations have started or ctx ends, then waits for the
// operations in flight. Each worker keeps its own samples, merged at the
// end, so that recording costs no lock on the measured path.
func Run(ctx context.Context, cfg Config, op Op) Result {
	workers := max(cfg.Workers, 1)
	classify := cfg.Classify
	if classify == nil {
		classify = func(error) string { return "error" }
	}
	type tally struct {
		lat  []time.Duration
		errs map[string]int
	}
	tallies := make([]tally, workers)
	var started atomic.Int64
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[w]
			t.errs = map[string]int{}
			for seq := 0; ; seq++ {
				if ctx.Err() != nil || !time.Now().Before(deadline) {
					return
				}
				if cfg.MaxOps > 0 && started.Add(1) > int64(cfg.MaxOps) {
					return
				}
				d, err := op(ctx, w, seq)
				if err != nil {
					t.errs[classify(err)]++
					continue
				}
				t.lat = append(t.lat, d)
			}
		}()
	}
	wg.Wait()
	res := Result{Elapsed: time.Since(start), Errors: map[string]int{}}
	for _, t := range tallies {
		res.Latencies = append(res.Latencies, t.lat...)
		for k, v := range t.errs {
			res.Errors[k] += v
		}
	}
	res.Ops = len(res.Latencies)
	slices.Sort(res.Latencies)
	return res
}

// Timed runs call and returns how long it took, for ops whose latency is
// one call's duration.
func Timed(call func() error) (time.Duration, error) {
	start := time.Now()
	err := call()
	return time.Since(start), err
}

// Recorder collects the outcomes of operations measured outside Run's own
// bookkeeping: a second series that an op measures alongside the one it
// returns (two carts served alternately by one worker, so that both see
// the same machine load). It is safe for concurrent use.
type Recorder struct {
	classify func(error) string
	mu       sync.Mutex
	lat      []time.Duration
	errs     map[string]int
}

// NewRecorder returns an empty Recorder naming errors with classify (nil:
// every error is "error", as in Run).
func NewRecorder(classify func(error) string) *Recorder {
	if classify == nil {
		classify = func(error) string { return "error" }
	}
	return &Recorder{classify: classify, errs: map[string]int{}}
}

// Record adds one operation: its latency when err is nil, else its error.
func (r *Recorder) Record(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs[r.classify(err)]++
		return
	}
	r.lat = append(r.lat, d)
}

// Result returns what was recorded as a Result with the given elapsed
// time; the recorder can keep recording.
func (r *Recorder) Result(elapsed time.Duration) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := Result{Ops: len(r.lat), Elapsed: elapsed, Errors: make(map[string]int, len(r.errs)), Latencies: slices.Clone(r.lat)}
	for k, v := range r.errs {
		res.Errors[k] = v
	}
	slices.Sort(res.Latencies)
	return res
}

// Busy is the sum of the recorded latencies: the elapsed time of a series
// that one worker ran interleaved with another, so that its Rate is that of
// a sequential client of this series alone.
func (r *Recorder) Busy() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sum time.Duration
	for _, d := range r.lat {
		sum += d
	}
	return sum
}
