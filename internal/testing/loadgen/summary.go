package loadgen

import (
	"math"
	"time"
)

// Summary condenses a latency distribution into the figures a benchmark
// table shows. Percentiles are exact (nearest rank over every sample), not
// estimated from buckets, since a run keeps all its samples.
type Summary struct {
	Count int
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// Summarize computes the summary of latencies, which must be sorted
// ascending. An empty slice gives the zero Summary.
func Summarize(sorted []time.Duration) Summary {
	if len(sorted) == 0 {
		return Summary{}
	}
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	return Summary{
		Count: len(sorted),
		Mean:  sum / time.Duration(len(sorted)),
		P50:   Percentile(sorted, 50),
		P90:   Percentile(sorted, 90),
		P99:   Percentile(sorted, 99),
		Max:   sorted[len(sorted)-1],
	}
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample such that at least p% of the
// samples are at or below it. Unlike interpolation it always answers a
// latency that was actually observed, and p99 of fewer than 100 samples is
// the maximum, which is the honest answer for a small run.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
