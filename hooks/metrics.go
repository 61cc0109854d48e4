package hooks

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics records how long hooks run. A nil *Metrics records nothing, so
// tests and tools such as `lifecycled explain` need no registry.
type Metrics struct {
	duration *prometheus.HistogramVec
}

// buckets reach past the default 30s hook timeout: the default buckets
// stop at 10s and would hide exactly the hooks that run long.
var buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// Result label values of lifecycled_hook_duration_seconds.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// NewMetrics registers the hook metrics with reg (never the default
// registry). Series for the known label values are created at once so that
// dashboards and alerts see zeros rather than gaps before the first hook.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		duration: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lifecycled_hook_duration_seconds",
			Help:    "Duration of postStart and preStop hook runs, by hook and result.",
			Buckets: buckets,
		}, []string{"hook", "result"}),
	}
	for _, hook := range []string{PostStart, PreStop} {
		for _, result := range []string{resultSuccess, resultFailure} {
			m.duration.WithLabelValues(hook, result)
		}
	}
	return m
}

func (m *Metrics) observe(hook string, failed bool, d time.Duration) {
	if m == nil {
		return
	}
	result := resultSuccess
	if failed {
		result = resultFailure
	}
	m.duration.WithLabelValues(hook, result).Observe(d.Seconds())
}
