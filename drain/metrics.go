package drain

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics records hook durations and the time spent in each step of the stop
// sequence. A nil *Metrics records nothing, so tests and tools such as
// `lifecycled explain` need no registry.
type Metrics struct {
	hookDuration *prometheus.HistogramVec
	stopStep     *prometheus.GaugeVec
}

// hookBuckets reach past the default 30s hook timeout: the default buckets
// stop at 10s and would hide exactly the hooks that run long.
var hookBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// Result label values of lifecycled_hook_duration_seconds.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// NewMetrics registers the drain metrics with reg (never the default
// registry). Series for the known label values are created at once so that
// dashboards and alerts see zeros rather than gaps before the first stop.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		hookDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lifecycled_hook_duration_seconds",
			Help:    "Duration of postStart and preStop hook runs, by hook and result.",
			Buckets: hookBuckets,
		}, []string{"hook", "result"}),
		stopStep: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lifecycled_stop_phase_seconds",
			Help: "Seconds spent in each step of the stop sequence (drain_delay, drain_connections, pre_stop, grace).",
		}, []string{"step"}),
	}
	for _, hook := range []string{HookPostStart, HookPreStop} {
		for _, result := range []string{resultSuccess, resultFailure} {
			m.hookDuration.WithLabelValues(hook, result)
		}
	}
	for _, step := range []string{StepDrainDelay, StepDrainConnections, StepPreStop, StepGrace} {
		m.stopStep.WithLabelValues(step)
	}
	return m
}

func (m *Metrics) observeHook(hook string, failed bool, d time.Duration) {
	if m == nil {
		return
	}
	result := resultSuccess
	if failed {
		result = resultFailure
	}
	m.hookDuration.WithLabelValues(hook, result).Observe(d.Seconds())
}

func (m *Metrics) setStep(step string, d time.Duration) {
	if m == nil {
		return
	}
	m.stopStep.WithLabelValues(step).Set(d.Seconds())
}
