package lifecycle

import (
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lifecycled/lifecycled/supervisor"
	"github.com/lifecycled/lifecycled/tombstone"
)

// metrics are the metrics of the run itself; probes/, hooks/ and drain/
// register their own on the same private registry.
type metrics struct {
	ready     prometheus.Gauge
	phase     *prometheus.GaugeVec
	forwarded *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		ready: f.NewGauge(prometheus.GaugeOpts{
			Name: "lifecycled_ready", Help: "1 when /readyz answers 200, else 0.",
		}),
		phase: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lifecycled_phase", Help: "1 for the current phase of the supervised child, 0 for the others.",
		}, []string{"phase"}),
		forwarded: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lifecycled_signals_forwarded_total", Help: "Signals forwarded to the child, by signal after --signal-map.",
		}, []string{"signal"}),
	}
	m.setPhase("")
	return m
}

// setPhase sets lifecycled_phase to 1 for phase and 0 for the others, which
// all exist from the start.
func (m *metrics) setPhase(phase string) {
	for _, p := range tombstone.Phases() {
		v := 0.0
		if p == phase {
			v = 1
		}
		m.phase.WithLabelValues(p).Set(v)
	}
}

func (m *metrics) setReady(ready bool) {
	v := 0.0
	if ready {
		v = 1
	}
	m.ready.Set(v)
}

func (m *metrics) signalForwarded(sig syscall.Signal) {
	m.forwarded.WithLabelValues(supervisor.SignalName(sig)).Inc()
}
