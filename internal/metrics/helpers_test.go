package metrics_test

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// samples gathers reg and returns the samples of family name as the
// exposition format names them: name{labels} for a counter or gauge, and
// name_count{labels}, name_sum{labels} and name_bucket{labels,le="..."}
// for a histogram (no +Inf bucket: that is the count), labels sorted. A family with no series (or not
// registered) gives an empty map, so that a comparison with the whole map
// also catches series that should not be there.
//
// (prometheus/testutil would do, but it needs a module this one does not
// require yet; the registry and client_model are enough.)
func samples(t *testing.T, reg prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(ls)
			key := func(suffix string, extra ...string) string {
				all := append(slices.Clone(ls), extra...)
				slices.Sort(all)
				return name + suffix + "{" + strings.Join(all, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				out[key("_count")] = float64(h.GetSampleCount())
				out[key("_sum")] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					le := strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)
					out[key("_bucket", fmt.Sprintf("le=%q", le))] = float64(b.GetCumulativeCount())
				}
			default:
				t.Fatalf("%s: unexpected type %v", name, f.GetType())
			}
		}
	}
	return out
}

// only keeps the samples of have whose names (before the labels) are in
// names, to compare a histogram's count and sum without its buckets.
func only(have map[string]float64, names ...string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range have {
		if slices.Contains(names, k[:strings.IndexByte(k, '{')]) {
			out[k] = v
		}
	}
	return out
}

// sameSamples fails t unless have and want hold the same samples.
func sameSamples(t *testing.T, what string, have, want map[string]float64) {
	t.Helper()
	if maps.Equal(have, want) {
		return
	}
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v, ok := have[k]; !ok {
			diff = append(diff, fmt.Sprintf("missing %s (want %v)", k, want[k]))
		} else if v != want[k] {
			diff = append(diff, fmt.Sprintf("%s = %v, want %v", k, v, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			diff = append(diff, fmt.Sprintf("unexpected %s = %v", k, have[k]))
		}
	}
	t.Errorf("%s:\n  %s", what, strings.Join(diff, "\n  "))
}
