package lifecycle

import (
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lifecycled/lifecycled/supervisor"
	"github.com/lifecycled/lifecycled/tombstone"
)

// metrics are the metrics of the run itself; probes/, hooks/ and drain/
// register their own on the same private registry.
type metrics struct {
	ready       prometheus.Gauge
	timeToReady prometheus.Gauge
	readyOnce   sync.Once
	start       time.Time // lifecycled's start, for timeToReady
	phase       *prometheus.GaugeVec
	forwarded   *prometheus.CounterVec
}

// newMetrics registers the run's metrics; start is when lifecycled started,
// version and revision are its build (lifecycled_build_info).
func newMetrics(reg prometheus.Registerer, start time.Time, version, revision string) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		start: start,
		ready: f.NewGauge(prometheus.GaugeOpts{
			Name: "lifecycled_ready", Help: "1 when /readyz answers 200, else 0.",
		}),
		timeToReady: f.NewGauge(prometheus.GaugeOpts{
			Name: "lifecycled_time_to_ready_seconds",
			Help: "Seconds from lifecycled's start to the first time /readyz answered 200; 0 until then.",
		}),
		phase: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lifecycled_phase", Help: "1 for the current phase of the supervised child, 0 for the others.",
		}, []string{"phase"}),
		forwarded: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lifecycled_signals_forwarded_total", Help: "Signals forwarded to the child, by signal after --signal-map.",
		}, []string{"signal"}),
	}
	m.setPhase("")
	if revision == "" {
		revision = "unknown"
	}
	f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lifecycled_build_info", Help: "Always 1; the labels say which lifecycled runs.",
	}, []string{"version", "revision", "goversion"}).WithLabelValues(version, revision, runtime.Version()).Set(1)
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

// setReady records readiness; the first time it is true, also how long
// lifecycled took to get there since its start.
func (m *metrics) setReady(ready bool) {
	v := 0.0
	if ready {
		v = 1
		m.readyOnce.Do(func() { m.timeToReady.Set(time.Since(m.start).Seconds()) })
	}
	m.ready.Set(v)
}

func (m *metrics) signalForwarded(sig syscall.Signal) {
	m.forwarded.WithLabelValues(supervisor.SignalName(sig)).Inc()
}
