package drain

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics records the time spent in each step of the stop sequence and the
// stop's Report. A nil *Metrics records nothing, so tests need no registry.
type Metrics struct {
	stopStep *prometheus.GaugeVec

	lastArrival, lastRequest prometheus.Gauge
	openAtStop, openAtKill   prometheus.Gauge
	killed                   prometheus.Gauge
	took, graceUsed          prometheus.Gauge
}

// NewMetrics registers the stop sequence's metrics with reg (never the
// default registry). Series for every step are created at once so that
// dashboards and alerts see zeros rather than gaps before the first stop.
// The report's figures are NaN until the stop knows them, and stay NaN
// when it never does (nothing seen, no port watched): as a summary's
// quantile with no observation, not a 0 that reads as "at once".
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	gauge := func(name, help string, v float64) prometheus.Gauge {
		g := f.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		g.Set(v)
		return g
	}
	nan := math.NaN()
	m := &Metrics{
		stopStep: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lifecycled_stop_phase_seconds",
			Help: "Seconds spent in each step of the stop sequence (drain_delay, drain_connections, pre_stop, grace).",
		}, []string{"step"}),
		lastArrival: gauge("lifecycled_drain_last_connection_seconds",
			"Drain report: seconds from the stop's start (SIGTERM) to the last new connection to the app's watched ports; NaN if none or not watched.", nan),
		lastRequest: gauge("lifecycled_drain_last_request_seconds",
			"Drain report: seconds from the stop's start (SIGTERM) to the last request byte on the app's watched ports; NaN if none or not watched.", nan),
		openAtStop: gauge("lifecycled_drain_connections_at_stop_signal",
			"Drain report: connections open to the app's watched ports when the stop signal was sent; NaN if unknown or not sent.", nan),
		openAtKill: gauge("lifecycled_drain_connections_at_sigkill",
			"Drain report: connections open to the app's watched ports when SIGKILL was sent (0 without SIGKILL); NaN if unknown.", nan),
		killed: gauge("lifecycled_drain_sigkill",
			"Drain report: 1 if the stop needed SIGKILL, else 0.", 0),
		took: gauge("lifecycled_drain_stop_seconds",
			"Drain report: seconds from the stop's start (SIGTERM) to the child's process group gone; 0 before a stop.", 0),
		graceUsed: gauge("lifecycled_drain_grace_used_ratio",
			"Drain report: lifecycled_drain_stop_seconds as a fraction of the pod's termination grace period; NaN if that is unknown.", nan),
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

// setOpenAtStopSignal records the count as soon as it is known: the grace
// period that follows can be long.
func (m *Metrics) setOpenAtStopSignal(n int) {
	if m == nil {
		return
	}
	m.openAtStop.Set(orNaN(float64(n), n >= 0))
}

// setReport records the stop's report, at its end.
func (m *Metrics) setReport(r Report) {
	if m == nil {
		return
	}
	m.lastArrival.Set(orNaN(r.LastArrival.Seconds(), r.LastArrival >= 0))
	m.lastRequest.Set(orNaN(r.LastRequestByte.Seconds(), r.LastRequestByte >= 0))
	m.openAtStop.Set(orNaN(float64(r.OpenAtStopSignal), r.OpenAtStopSignal >= 0))
	m.openAtKill.Set(orNaN(float64(r.OpenAtKill), r.OpenAtKill >= 0))
	k := 0.0
	if r.Killed {
		k = 1
	}
	m.killed.Set(k)
	m.took.Set(r.Took.Seconds())
	g := r.GraceUsed()
	m.graceUsed.Set(orNaN(g, g >= 0))
}

func orNaN(v float64, known bool) float64 {
	if known {
		return v
	}
	return math.NaN()
}
