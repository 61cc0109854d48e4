package probes

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the dependency and probe metrics of CONTRACT section 8. A nil
// *Metrics is valid and records nothing, so callers and tests that do not care
// need no registry.
type Metrics struct {
	dependencyUp   *prometheus.GaugeVec
	dependencyWait *prometheus.GaugeVec
	probeTotal     *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg. It panics if they are already
// registered there, as promauto does: that is a wiring bug, found at start.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		dependencyUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lifecycled_dependency_up",
			Help: "Whether a --wait dependency was found up (1) or not yet (0).",
		}, []string{"target"}),
		dependencyWait: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lifecycled_dependency_wait_seconds",
			Help: "Seconds spent waiting for a --wait dependency: until it was up, or so far.",
		}, []string{"target"}),
		probeTotal: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lifecycled_probe_total",
			Help: "Readiness probe results, by result (success or failure).",
		}, []string{"result"}),
	}
	// Both series exist from the start, so rate() sees the first failure.
	m.probeTotal.WithLabelValues("success")
	m.probeTotal.WithLabelValues("failure")
	return m
}

// setDependency records a --wait dependency's state and time waited so far.
func (m *Metrics) setDependency(target string, up bool, waited float64) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.dependencyUp.WithLabelValues(target).Set(v)
	m.dependencyWait.WithLabelValues(target).Set(waited)
}

// countProbe counts one readiness probe result.
func (m *Metrics) countProbe(ok bool) {
	if m == nil {
		return
	}
	result := "failure"
	if ok {
		result = "success"
	}
	m.probeTotal.WithLabelValues(result).Inc()
}
