package metrics_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acme/cart/internal/metrics"
)

// TestStoreCallsTimeEveryCall calls the hooks the store adapters are given
// (eventstore: append and read; mongodb: write and read) and checks the
// count and sum of each cart_store_call_duration_seconds series: one per
// store and op, failed calls timed too.
func TestStoreCallsTimeEveryCall(t *testing.T) {
	const name = "cart_store_call_duration_seconds"
	type call struct {
		store, op string
		took      time.Duration
		err       error
	}
	failed := errors.New("unavailable")
	for _, tc := range []struct {
		name  string
		calls []call
		want  map[string]float64
	}{
		{name: "no calls, no series", want: map[string]float64{}},
		{
			name: "event store reads",
			calls: []call{
				{metrics.StoreEventStore, "read", 250 * time.Millisecond, nil},
				{metrics.StoreEventStore, "read", 500 * time.Millisecond, nil},
			},
			want: map[string]float64{
				name + `_count{op="read",store="eventstore"}`: 2,
				name + `_sum{op="read",store="eventstore"}`:   0.75,
			},
		},
		{
			name: "failed calls are timed",
			calls: []call{
				{metrics.StoreEventStore, "append", 2 * time.Second, failed},
				{metrics.StoreEventStore, "append", 500 * time.Millisecond, nil},
				{metrics.StoreEventStore, "read", 250 * time.Millisecond, failed},
			},
			want: map[string]float64{
				name + `_count{op="append",store="eventstore"}`: 2,
				name + `_sum{op="append",store="eventstore"}`:   2.5,
				name + `_count{op="read",store="eventstore"}`:   1,
				name + `_sum{op="read",store="eventstore"}`:     0.25,
			},
		},
		{
			name: "stores kept apart",
			calls: []call{
				{metrics.StoreEventStore, "read", 250 * time.Millisecond, nil},
				{metrics.StoreMongoDB, "read", 500 * time.Millisecond, nil},
				{metrics.StoreMongoDB, "read", 500 * time.Millisecond, nil},
				{metrics.StoreMongoDB, "write", time.Second, nil},
			},
			want: map[string]float64{
				name + `_count{op="read",store="eventstore"}`: 1,
				name + `_sum{op="read",store="eventstore"}`:   0.25,
				name + `_count{op="read",store="mongodb"}`:    2,
				name + `_sum{op="read",store="mongodb"}`:      1,
				name + `_count{op="write",store="mongodb"}`:   1,
				name + `_sum{op="write",store="mongodb"}`:     1,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			hooks := map[string]func(string, time.Duration, error){
				metrics.StoreEventStore: m.StoreCalls(metrics.StoreEventStore),
				metrics.StoreMongoDB:    m.StoreCalls(metrics.StoreMongoDB),
			}
			for _, c := range tc.calls {
				hooks[c.store](c.op, c.took, c.err)
			}
			sameSamples(t, name, only(samples(t, m.Registry(), name), name+"_count", name+"_sum"), tc.want)
		})
	}
}

// TestStoreCallBuckets: a call lands in the buckets from its latency up.
func TestStoreCallBuckets(t *testing.T) {
	const name = "cart_store_call_duration_seconds"
	m := metrics.New()
	read := m.StoreCalls(metrics.StoreEventStore)
	for _, d := range []time.Duration{300 * time.Microsecond, 3 * time.Millisecond, 30 * time.Millisecond, 20 * time.Second} {
		read("read", d, nil)
	}
	have := samples(t, m.Registry(), name)
	for le, want := range map[string]float64{"0.0005": 1, "0.001": 1, "0.005": 2, "0.05": 3, "10": 3} {
		k := name + `_bucket{le="` + le + `",op="read",store="eventstore"}`
		if v, ok := have[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	if k := name + `_count{op="read",store="eventstore"}`; have[k] != 4 {
		t.Errorf("%s = %v, want 4 (the one over every bucket included)", k, have[k])
	}
}

// TestHandlerServesTheRegistry scrapes Handler over HTTP: the registry's
// series in the text format, and pprof only when asked for.
func TestHandlerServesTheRegistry(t *testing.T) {
	for _, withPprof := range []bool{false, true} {
		m := metrics.New()
		m.Commands().Conflict("AddItem")
		m.Projection().Resubscribed()
		srv := httptest.NewServer(m.Handler(withPprof))
		body, code := get(t, srv.URL+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics = %d", code)
		}
		for _, line := range []string{
			`cart_command_conflicts_total{command="AddItem"} 1`,
			`cart_projection_reconnects_total 1`,
			`cart_projection_events_total{outcome="skipped"} 0`,
			`go_goroutines `,
		} {
			if !strings.Contains(body, "\n"+line) {
				t.Errorf("/metrics has no line %q", line)
			}
		}
		want := http.StatusNotFound
		if withPprof {
			want = http.StatusOK
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap"} {
			if _, code := get(t, srv.URL+path); code != want {
				t.Errorf("pprof %v: GET %s = %d, want %d", withPprof, path, code, want)
			}
		}
		srv.Close()
	}
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}
