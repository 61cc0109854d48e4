// Package promtest reads metrics the way a scrape sees them, for the tests
// of the packages that register lifecycled's series (drain, hooks, probes,
// lifecycle): through Gather on the registry the code under test was given,
// so a test checks the exposed series, names and labels included, rather
// than a collector's internals.
package promtest

import (
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// Series returns the series of the family name whose labels are exactly
// labels, and fails the test when there is none.
func Series(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if maps.Equal(got, labels) {
				return m
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return nil
}

// Value returns the value of the gauge or counter series name{labels}.
func Value(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := Series(t, reg, name, labels)
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// HistogramCount returns the number of observations of the histogram
// series name{labels}.
func HistogramCount(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) uint64 {
	t.Helper()
	return Series(t, reg, name, labels).GetHistogram().GetSampleCount()
}
