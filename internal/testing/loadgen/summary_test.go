package loadgen

import (
	"testing"
	"time"
)

func ms(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", ms(7), 1, 7 * time.Millisecond},
		{"p50 of 1..100 is 50", seq(100), 50, 50 * time.Millisecond},
		{"p90 of 1..100 is 90", seq(100), 90, 90 * time.Millisecond},
		{"p99 of 1..100 is 99, not the max", seq(100), 99, 99 * time.Millisecond},
		{"p100 is the max", seq(100), 100, 100 * time.Millisecond},
		{"p99 of 1..1000 is 990", seq(1000), 99, 990 * time.Millisecond},
		{"p99 of fewer than 100 samples is the max", seq(10), 99, 10 * time.Millisecond},
		{"p50 of an even count is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p50 of an odd count is the middle", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"a tiny p is the min", seq(10), 0.001, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%d samples, %v) = %v, want %v", len(tt.sorted), tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sorted []time.Duration
		want   Summary
	}{
		{"empty", nil, Summary{}},
		{"skewed", ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 91), Summary{
			Count: 10, Mean: 10 * time.Millisecond,
			P50: time.Millisecond, P90: time.Millisecond, P99: 91 * time.Millisecond, Max: 91 * time.Millisecond,
		}},
		{"uniform", seq(200), Summary{
			Count: 200, Mean: 100500 * time.Microsecond,
			P50: 100 * time.Millisecond, P90: 180 * time.Millisecond, P99: 198 * time.Millisecond, Max: 200 * time.Millisecond,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Summarize(tt.sorted); got != tt.want {
				t.Errorf("Summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}
