package main

import (
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lifecycled/lifecycled/supervisor"
)

// phases are the tombstone's phases, in order; lifecycled_phase has one
// series for each.
var phases = []string{"waiting", "starting", "running", "draining", "exited"}

// runMetrics are the metrics of the run itself; probes/ and drain/ register
// their own on the same private registry.
type runMetrics struct {
	ready       prometheus.Gauge
	timeToReady prometheus.Gauge
	readyOnce   sync.Once
	phase       *prometheus.GaugeVec
	forwarded   *prometheus.CounterVec
	reaped      prometheus.Counter
}

// newRegistry returns the private registry every metric goes to, with the
// Go and process collectors when it is served: /metrics never exposes the
// global default registry, so nothing a library registers behind our back
// shows up. Without --listen nobody reads the collectors, and building
// them costs start-up time.
func newRegistry(served bool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if served {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return reg
}

// newRunMetrics registers the run's metrics; logsDropped counts the log
// lines lifecycled dropped because stderr was not read (see logQueue).
func newRunMetrics(reg prometheus.Registerer, logsDropped func() uint64) *runMetrics {
	f := promauto.With(reg)
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "lifecycled_log_lines_dropped_total",
		Help: "Lines of lifecycled's own log dropped because stderr was not being read.",
	}, func() float64 { return float64(logsDropped()) })
	m := &runMetrics{
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
		reaped: f.NewCounter(prometheus.CounterOpts{
			Name: "lifecycled_zombies_reaped_total", Help: "Adopted orphans reaped (not counting the child itself).",
		}),
	}
	for _, p := range phases {
		m.phase.WithLabelValues(p).Set(0)
	}
	ver, rev := buildVersion()
	if rev == "" {
		rev = "unknown"
	}
	f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lifecycled_build_info", Help: "Always 1; the labels say which lifecycled runs.",
	}, []string{"version", "revision", "goversion"}).WithLabelValues(ver, rev, runtime.Version()).Set(1)
	return m
}

// setReady records readiness; the first time it is true, also how long
// lifecycled took to get there since start.
func (m *runMetrics) setReady(ready bool, start time.Time) {
	v := 0.0
	if ready {
		v = 1
		m.readyOnce.Do(func() { m.timeToReady.Set(time.Since(start).Seconds()) })
	}
	m.ready.Set(v)
}

func (m *runMetrics) setPhase(phase string) {
	for _, p := range phases {
		v := 0.0
		if p == phase {
			v = 1
		}
		m.phase.WithLabelValues(p).Set(v)
	}
}

func (m *runMetrics) signalForwarded(sig syscall.Signal) {
	m.forwarded.WithLabelValues(supervisor.SignalName(sig)).Inc()
}
