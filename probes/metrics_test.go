package probes

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/promtest"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.setDependency("tcp://db:5432", false, 1.5)
	m.setDependency("http://api/healthz", true, 0.25)
	m.countProbe(true)
	m.countProbe(false)
	m.countProbe(false)

	assert.Equal(t, 0.0, promtest.Value(t, reg, "lifecycled_dependency_up", map[string]string{"target": "tcp://db:5432"}))
	assert.Equal(t, 1.5, promtest.Value(t, reg, "lifecycled_dependency_wait_seconds", map[string]string{"target": "tcp://db:5432"}))
	assert.Equal(t, 1.0, promtest.Value(t, reg, "lifecycled_dependency_up", map[string]string{"target": "http://api/healthz"}))
	assert.Equal(t, 1.0, promtest.Value(t, reg, "lifecycled_probe_total", map[string]string{"result": "success"}))
	assert.Equal(t, 2.0, promtest.Value(t, reg, "lifecycled_probe_total", map[string]string{"result": "failure"}))

	// What `promtool check metrics` checks.
	families, err := reg.Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestMetricsProbeSeriesFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	assert.Equal(t, 0.0, promtest.Value(t, reg, "lifecycled_probe_total", map[string]string{"result": "success"}))
	assert.Equal(t, 0.0, promtest.Value(t, reg, "lifecycled_probe_total", map[string]string{"result": "failure"}))
}

func TestMetricsPrivateRegistry(t *testing.T) {
	// Two instances on two registries: nothing is global, so no clash.
	NewMetrics(prometheus.NewRegistry())
	NewMetrics(prometheus.NewRegistry())
	// nil records nothing and does not panic: callers may pass no Metrics.
	var m *Metrics
	assert.NotPanics(t, func() {
		m.setDependency("tcp://db:5432", true, 1)
		m.countProbe(true)
	})
	// The same registry twice is a wiring bug, caught at once.
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	assert.Panics(t, func() { NewMetrics(reg) })
}
