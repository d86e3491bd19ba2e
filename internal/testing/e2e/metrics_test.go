package e2e_test

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/cart/internal/cart"
	cartv1 "github.com/acme/cart/proto/cart/v1"
)

// metricsPage is one scrape of a /metrics endpoint, parsed.
type metricsPage map[string]*dto.MetricFamily

// scrape GETs addr's /metrics over HTTP and parses the text exposition.
func scrape(t *testing.T, addr string) metricsPage {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s\n%s", addr, resp.Status, b)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: parse: %v", addr, err)
	}
	return fams
}

// value is the value of the series of family name whose labels include
// labels: a counter's or gauge's value, a histogram's sample count. ok is
// false when no series matches; several matching series are summed.
func (p metricsPage) value(name string, labels map[string]string) (v float64, ok bool) {
	fam := p[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, want := range labels {
			match = match && have[k] == want
		}
		if !match {
			continue
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, ok
}

// want is an expected value of a series, for a table of checks.
type want struct {
	name   string
	labels map[string]string
	holds  func(float64) bool
	says   string // what holds checks, for the failure message
}

func eq(n float64) (func(float64) bool, string) {
	return func(v float64) bool { return v == n }, fmt.Sprintf("== %v", n)
}

func atLeast(n float64) (func(float64) bool, string) {
	return func(v float64) bool { return v >= n }, fmt.Sprintf(">= %v", n)
}

func above(n float64) (func(float64) bool, string) {
	return func(v float64) bool { return v > n }, fmt.Sprintf("> %v", n)
}

func w(name string, labels map[string]string, check func(float64) (func(float64) bool, string), n float64) want {
	holds, says := check(n)
	return want{name: name, labels: labels, holds: holds, says: says}
}

// failing lists the checks page does not pass.
func (p metricsPage) failing(wants []want) []string {
	var bad []string
	for _, c := range wants {
		v, ok := p.value(c.name, c.labels)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s%v: absent, want %s", c.name, c.labels, c.says))
		} else if !c.holds(v) {
			bad = append(bad, fmt.Sprintf("%s%v = %v, want %s", c.name, c.labels, v, c.says))
		}
	}
	return bad
}

// eventuallyMetrics scrapes addr until every check passes, failing the
// test with what still fails after 20 s. Counters of the read side move
// after the flush that made a document readable, so a reader that saw
// its write may scrape a moment too early.
func eventuallyMetrics(t *testing.T, addr string, wants []want) metricsPage {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p := scrape(t, addr)
		bad := p.failing(wants)
		if len(bad) == 0 {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics of %s after 20s:\n  %s", addr, strings.Join(bad, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetricsCountTheWorkload scrapes both services' /metrics over HTTP
// after a known workload: the commands by outcome, the RPCs, the store
// calls, the projected events, a parked poison event, and pprof only where
// it was turned on.
func TestMetricsCountTheWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	e := newEnv(t)
	const n = 5
	versions := map[string]int64{}
	for i := range n {
		u := fmt.Sprintf("metrics-%d", i)
		versions[u] = e.add(u, "sku-1", 1, eur(3, 0))
	}
	// A rule refuses one command; a request without a product is bad input.
	if _, err := e.cmd.RemoveItem(ctx(t), &cartv1.RemoveItemRequest{UserId: "metrics-0", ProductId: "nope"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("RemoveItem(missing product) = %v; want FAILED_PRECONDITION", err)
	}
	if _, err := e.cmd.AddItem(ctx(t), &cartv1.AddItemRequest{UserId: "metrics-0", Quantity: 1}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("AddItem(no product) = %v; want INVALID_ARGUMENT", err)
	}
	for _, u := range slices.Sorted(maps.Keys(versions)) {
		e.cartAt(u, versions[u])
	}

	cmdSvc := map[string]string{"grpc_service": cartv1.CartCommandService_ServiceDesc.ServiceName}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := maps.Clone(base)
		if m == nil {
			m = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	eventuallyMetrics(t, e.cmdMetricsAddr, []want{
		w("cart_commands_total", map[string]string{"command": "AddItem", "outcome": "ok"}, eq, n),
		w("cart_commands_total", map[string]string{"command": "AddItem", "outcome": "rejected"}, eq, 1),
		w("cart_commands_total", map[string]string{"command": "RemoveItem", "outcome": "rejected"}, eq, 1),
		w("grpc_server_handled_total", with(cmdSvc, "grpc_method", "AddItem", "grpc_code", "OK"), eq, n),
		w("grpc_server_handled_total", with(cmdSvc, "grpc_method", "AddItem", "grpc_code", "InvalidArgument"), eq, 1),
		w("grpc_server_handled_total", with(cmdSvc, "grpc_method", "RemoveItem", "grpc_code", "FailedPrecondition"), eq, 1),
		// Methods never called are there at zero, so rates start at 0.
		w("grpc_server_handled_total", with(cmdSvc, "grpc_method", "CheckoutCart", "grpc_code", "OK"), eq, 0),
		w("grpc_server_handling_seconds", with(cmdSvc, "grpc_method", "AddItem"), eq, n+1),
		w("cart_store_call_duration_seconds", map[string]string{"store": "eventstore", "op": "append"}, eq, n),
		w("go_goroutines", nil, atLeast, 1),
		// The process (this test binary, both services in it) did work.
		w("process_cpu_seconds_total", nil, above, 0),
	})
	p := scrape(t, e.cmdMetricsAddr)
	if v, ok := p.value("cart_commands_total", map[string]string{"outcome": "error"}); ok {
		t.Errorf("%v commands counted as errors; every failure here was the caller's", v)
	}
	if p["cart_projection_events_total"] != nil {
		t.Error("command-svc exports the projector's metrics")
	}

	qrySvc := map[string]string{"grpc_service": cartv1.CartQueryService_ServiceDesc.ServiceName}
	eventuallyMetrics(t, e.queryMetricsAddr, []want{
		w("cart_projection_events_total", map[string]string{"outcome": "applied"}, eq, n),
		w("cart_projection_events_total", map[string]string{"outcome": "parked"}, eq, 0),
		w("cart_projection_parked_events", nil, eq, 0),
		w("cart_projection_active", nil, eq, 1),
		w("cart_projection_checkpoint_commit", nil, atLeast, 1),
		w("cart_projection_flush_size", nil, atLeast, 1),
		w("cart_projection_flush_duration_seconds", nil, atLeast, 1),
		w("cart_projection_reconnects_total", nil, eq, 0),
		w("cart_store_call_duration_seconds", map[string]string{"store": "mongodb", "op": "write"}, atLeast, 1),
		w("cart_store_call_duration_seconds", map[string]string{"store": "mongodb", "op": "read"}, atLeast, n),
		w("grpc_server_handled_total", with(qrySvc, "grpc_method", "GetCart", "grpc_code", "OK"), eq, n),
		w("grpc_server_handled_total", map[string]string{"grpc_service": cartv1.CartAdminService_ServiceDesc.ServiceName}, eq, 0),
	})
	if p := scrape(t, e.queryMetricsAddr); p["cart_commands_total"] != nil {
		t.Error("query-svc exports the command handler's metrics")
	}

	// A poison event: parked, counted as such, and in the parking lot now.
	e.appendRaw("metrics-1", "CouponApplied", `{"code":"SPRING"}`)
	eventuallyMetrics(t, e.queryMetricsAddr, []want{
		w("cart_projection_events_total", map[string]string{"outcome": "parked"}, eq, 1),
		w("cart_projection_events_total", map[string]string{"outcome": "applied"}, eq, n),
		w("cart_projection_parked_events", nil, eq, 1),
	})

	// pprof only where --pprof is on (query-svc in this harness).
	for _, c := range []struct {
		addr string
		want int
	}{
		{e.cmdMetricsAddr, http.StatusNotFound},
		{e.queryMetricsAddr, http.StatusOK},
	} {
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
			if got := httpStatus(t, "http://"+c.addr+path); got != c.want {
				t.Errorf("GET %s%s = %d, want %d", c.addr, path, got, c.want)
			}
		}
	}
}

// TestMetricsCountConflictsReadsAndReconnects drives the series the
// workload leaves at zero. An event appended behind command-svc's back
// leaves its cached cart behind, so the next command on it is refused at
// the cached version, reads the stream's tail and appends again: one
// conflict, one event store read, no exhausted retries. GetCartHistory
// reads the log on query-svc. Subscriptions dropped by EventStoreDB make
// the projector reconnect, and it goes on projecting.
func TestMetricsCountConflictsReadsAndReconnects(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	e := newEnv(t)
	const user = "metrics-racer"
	esRead := map[string]string{"store": "eventstore", "op": "read"}
	addItem := map[string]string{"command": "AddItem"}

	// A new cart: appended as presumed new, no read; now cached.
	v := e.add(user, "sku-1", 1, eur(3, 0))
	before := scrape(t, e.cmdMetricsAddr)
	cmdReads, _ := before.value("cart_store_call_duration_seconds", esRead)
	for _, name := range []string{"cart_command_conflicts_total", "cart_command_retries_exhausted_total"} {
		if n, ok := before.value(name, nil); ok {
			t.Fatalf("%s = %v before any conflict", name, n)
		}
	}

	e.appendRaw(user, cart.TypeItemAdded, `{"product_id":"sku-2","quantity":1,"unit_price":{"currency_code":"EUR","units":1}}`)
	if got := e.add(user, "sku-3", 1, eur(5, 0)); got != v+2 {
		t.Fatalf("AddItem after the write behind its back = version %d, want %d", got, v+2)
	}
	after := eventuallyMetrics(t, e.cmdMetricsAddr, []want{
		w("cart_command_conflicts_total", addItem, eq, 1),
		w("cart_commands_total", map[string]string{"command": "AddItem", "outcome": "ok"}, eq, 2),
		w("cart_store_call_duration_seconds", esRead, eq, cmdReads+1),
		// The new cart's append, the one refused (failed calls are timed
		// too) and the one after the read.
		w("cart_store_call_duration_seconds", map[string]string{"store": "eventstore", "op": "append"}, eq, 3),
	})
	if n, ok := after.value("cart_command_retries_exhausted_total", nil); ok {
		t.Errorf("cart_command_retries_exhausted_total = %v after one conflict that a retry resolved", n)
	}

	// GetCartHistory: one page, one read of the stream.
	e.cartAt(user, v+2)
	qryReads, _ := scrape(t, e.queryMetricsAddr).value("cart_store_call_duration_seconds", esRead)
	if h := e.history(user); len(h) != 3 {
		t.Fatalf("history = %d events, want 3", len(h))
	}
	eventuallyMetrics(t, e.queryMetricsAddr, []want{
		w("cart_store_call_duration_seconds", esRead, eq, qryReads+1),
		w("cart_store_call_duration_seconds", esRead, above, 0),
	})

	// EventStoreDB drops the projector's subscription.
	eventuallyMetrics(t, e.queryMetricsAddr, []want{w("cart_projection_reconnects_total", nil, eq, 0)})
	waitSubscribed(t, e)
	e.esdb.DropSubscriptions()
	eventuallyMetrics(t, e.queryMetricsAddr, []want{w("cart_projection_reconnects_total", nil, atLeast, 1)})
	v4 := e.add(user, "sku-4", 1, eur(6, 0))
	e.cartAt(user, v4)
	eventuallyMetrics(t, e.queryMetricsAddr, []want{
		w("cart_projection_reconnects_total", nil, atLeast, 1),
		w("cart_projection_events_total", map[string]string{"outcome": "applied"}, eq, 4),
		w("cart_projection_events_total", map[string]string{"outcome": "parked"}, eq, 0),
		w("cart_projection_lag_events", nil, eq, 0),
	})
}

// waitSubscribed waits until the stand-in has a subscription open (the
// projector's), so that dropping subscriptions drops it.
func waitSubscribed(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.esdb.ActiveSubscriptions() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no subscription open after 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsShowTheLag pauses query-svc's projector (its decoder blocks)
// and scrapes the lag: 0 once caught up, above 0 in events and seconds
// while an event waits, 0 again once the projector goes on.
func TestMetricsShowTheLag(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	e := newEnv(t)
	g := newGate()
	e.stopQuery()
	e.decode = g.decode
	e.restartQuery()
	t.Cleanup(g.release) // before query-svc stops (cleanups run last first)

	v := e.add("lagging", "sku-1", 1, eur(3, 0))
	e.cartAt("lagging", v)
	caughtUp := []want{
		w("cart_projection_lag_events", nil, eq, 0),
		w("cart_projection_lag_seconds", nil, eq, 0),
		w("cart_projection_active", nil, eq, 1),
	}
	eventuallyMetrics(t, e.queryMetricsAddr, caughtUp)

	g.close()
	v = e.add("lagging", "sku-2", 1, eur(4, 0))
	eventuallyMetrics(t, e.queryMetricsAddr, []want{
		w("cart_projection_lag_events", nil, atLeast, 1),
		w("cart_projection_lag_seconds", nil, above, 0),
	})

	g.release()
	e.cartAt("lagging", v)
	eventuallyMetrics(t, e.queryMetricsAddr, caughtUp)
}

// gate blocks the projector's decoder while closed, to hold the projector
// still with events waiting.
type gate struct {
	mu     sync.Mutex
	closed bool
	open   chan struct{}
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed, g.open = true, make(chan struct{})
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.open)
	}
}

func (g *gate) decode(eventType string, data []byte) (cart.Event, error) {
	g.mu.Lock()
	closed, open := g.closed, g.open
	g.mu.Unlock()
	if closed {
		<-open
	}
	return cart.Unmarshal(eventType, data)
}
