package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSummarize(t *testing.T) {
	var xs []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		xs = append(xs, time.Duration(i)*time.Millisecond)
	}
	s := summarize(xs)
	assert.Equal(t, 100, s.n)
	assert.Equal(t, time.Millisecond, s.min)
	assert.Equal(t, 50*time.Millisecond, s.median)
	assert.Equal(t, 99*time.Millisecond, s.p99)
	assert.Equal(t, 100*time.Millisecond, s.max)
	assert.Equal(t, 100*time.Millisecond, xs[0], "summarize must not reorder its input")
	assert.Equal(t, summary{}, summarize(nil))
}

func TestPercentileNearestRank(t *testing.T) {
	tests := []struct {
		n    int
		p    float64
		want time.Duration
	}{
		{1, 99, 1},
		{2, 50, 1},
		{3, 50, 2},
		{10, 99, 10},
		{1000, 99, 990},
	}
	for _, tt := range tests {
		sorted := make([]time.Duration, tt.n)
		for i := range sorted {
			sorted[i] = time.Duration(i + 1)
		}
		assert.Equal(t, tt.want, percentile(sorted, tt.p), "n=%d p=%v", tt.n, tt.p)
	}
}

func TestFormatting(t *testing.T) {
	assert.Equal(t, "950 ns", fmtDur(950))
	assert.Equal(t, "18.6 µs", fmtDur(18600))
	assert.Equal(t, "1.12 ms", fmtDur(1120*time.Microsecond))
	assert.Equal(t, "-2.5 ms", fmtDur(-2500*time.Microsecond))
	assert.Equal(t, "2.00×", fmtRatio(ratio(2, 1)))
	assert.Equal(t, "n/a", fmtRatio(ratio(2, 0)))
}

func TestVerdicts(t *testing.T) {
	assert.Equal(t, "met", check("x", 1.9, 2, "").String())
	assert.Equal(t, "**NOT met**", check("x", 2.1, 2, "").String())
	assert.Equal(t, "n/a", check("x", ratio(1, 0), 2, "").String())
	assert.True(t, allMet([]*table{{verdicts: []verdict{check("x", ratio(1, 0), 2, "")}}}), "unknown is not a miss")
	assert.False(t, allMet([]*table{{verdicts: []verdict{check("x", 3, 2, "")}}}))
}

func TestTableMarkdown(t *testing.T) {
	tb := &table{title: "T", intro: "how", header: []string{"a", "bb"}, rows: [][]string{{"µµµ", "1"}}, notes: []string{"n"}}
	var sb strings.Builder
	tb.writeMarkdown(&sb, 3)
	want := "## 3. T\n\nhow\n\n| a   | bb |\n| --- | -- |\n| µµµ | 1  |\n\n- n\n\n"
	require.Equal(t, want, sb.String())
}

func TestRoundRobinRotates(t *testing.T) {
	cs := []candidate{{name: "a"}, {name: "b"}, {name: "c"}}
	var got []string
	require.NoError(t, roundRobin(cs, 3, func(_ int, c candidate) error { got = append(got, c.name); return nil }))
	assert.Equal(t, []string{"a", "b", "c", "b", "c", "a", "c", "a", "b"}, got)
}

func TestSelectSections(t *testing.T) {
	s, err := selectSections("signal, startup")
	require.NoError(t, err)
	require.Len(t, s, 2)
	assert.Equal(t, "signal", s[0].name)
	_, err = selectSections("nope")
	assert.ErrorContains(t, err, `unknown section "nope"`)
}
