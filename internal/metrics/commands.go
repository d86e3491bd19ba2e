package metrics

import "github.com/prometheus/client_golang/prometheus"

// Commands counts what command-svc's handler does. It implements the
// handler's observer hook (command.Observer) without this package
// importing the handler.
type Commands struct {
	done      *prometheus.CounterVec
	conflicts *prometheus.CounterVec
	exhausted *prometheus.CounterVec
}

// Commands registers the write side's counters and returns the observer to
// give the command handler. Call it once per Metrics.
func (m *Metrics) Commands() *Commands {
	c := &Commands{
		done: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_commands_total",
			Help: "Commands handled, by command and outcome: ok, rejected (a business rule, bad input, the caller's version or command ID, or conflicts after every retry), canceled (by the caller), error (the service or a store failed).",
		}, []string{"command", "outcome"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_command_conflicts_total",
			Help: "Appends refused because the cart's stream moved on (optimistic concurrency), each followed by a retry.",
		}, []string{"command"}),
		exhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cart_command_retries_exhausted_total",
			Help: "Commands that met a concurrent write on every attempt and were answered Aborted.",
		}, []string{"command"}),
	}
	m.reg.MustRegister(c.done, c.conflicts, c.exhausted)
	return c
}

// CommandDone counts a handled command.
func (c *Commands) CommandDone(command, outcome string) {
	c.done.WithLabelValues(command, outcome).Inc()
}

// Conflict counts an append refused for a concurrent write.
func (c *Commands) Conflict(command string) {
	c.conflicts.WithLabelValues(command).Inc()
}

// RetriesExhausted counts a command given up after its conflict retries.
func (c *Commands) RetriesExhausted(command string) {
	c.exhausted.WithLabelValues(command).Inc()
}
