package promtest

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
)

// fatalTB records Fatalf instead of ending the test, to check the helpers'
// own failures.
type fatalTB struct {
	testing.TB
	failed string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestRead(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "g", Help: "h"}, []string{"a", "b"})
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "h"}, []string{"a"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"}, []string{"a"})
	reg.MustRegister(g, c, h)
	g.WithLabelValues("1", "2").Set(1.5)
	g.WithLabelValues("1", "3").Set(7)
	c.WithLabelValues("x").Add(3)
	h.WithLabelValues("x").Observe(0.1)
	h.WithLabelValues("x").Observe(0.2)
	h.WithLabelValues("y").Observe(0.2)

	assert.Equal(t, 1.5, Value(t, reg, "g", map[string]string{"a": "1", "b": "2"}))
	assert.Equal(t, 7.0, Value(t, reg, "g", map[string]string{"a": "1", "b": "3"}))
	assert.Equal(t, 3.0, Value(t, reg, "c_total", map[string]string{"a": "x"}))
	assert.Equal(t, uint64(2), HistogramCount(t, reg, "h_seconds", map[string]string{"a": "x"}))
	assert.Equal(t, uint64(1), HistogramCount(t, reg, "h_seconds", map[string]string{"a": "y"}))

	// Labels match exactly: a subset, a superset or another family's name
	// is no series.
	for _, miss := range []struct {
		name   string
		labels map[string]string
	}{
		{"g", map[string]string{"a": "1"}},
		{"g", map[string]string{"a": "1", "b": "2", "c": "3"}},
		{"g", map[string]string{"a": "1", "b": "4"}},
		{"c_total", map[string]string{"a": "1", "b": "2"}},
		{"nothing", nil},
	} {
		tb := &fatalTB{TB: t}
		assert.Nil(t, Series(tb, reg, miss.name, miss.labels))
		assert.Equal(t, fmt.Sprintf("no series %s%v", miss.name, miss.labels), tb.failed)
	}
}
