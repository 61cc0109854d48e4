package drain

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics records the time spent in each step of the stop sequence. A nil
// *Metrics records nothing, so tests need no registry.
type Metrics struct {
	stopStep *prometheus.GaugeVec
}

// NewMetrics registers the stop sequence's metrics with reg (never the
// default registry). Series for every step are created at once so that
// dashboards and alerts see zeros rather than gaps before the first stop.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		stopStep: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "lifecycled_stop_phase_seconds",
			Help: "Seconds spent in each step of the stop sequence (drain_delay, drain_connections, pre_stop, grace).",
		}, []string{"step"}),
	}
	for _, step := range []string{StepDrainDelay, StepDrainConnections, StepPreStop, StepGrace} {
		m.stopStep.WithLabelValues(step)
	}
	return m
}

func (m *Metrics) setStep(step string, d time.Duration) {
	if m == nil {
		return
	}
	m.stopStep.WithLabelValues(step).Set(d.Seconds())
}
