package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// summary is the order statistics the report shows of a set of samples.
type summary struct {
	n                     int
	min, median, p99, max time.Duration
}

// summarize sorts a copy of xs; percentiles are nearest-rank.
func summarize(xs []time.Duration) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return summary{n: len(s), min: s[0], median: percentile(s, 50), p99: percentile(s, 99), max: s[len(s)-1]}
}

// percentile of sorted samples, nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// fmtDur prints a duration with three significant digits in a unit that
// suits it.
func fmtDur(d time.Duration) string {
	switch a := d.Abs(); {
	case a < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case a < time.Millisecond:
		return fmt.Sprintf("%.3g µs", float64(d)/float64(time.Microsecond))
	case a < time.Second:
		return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3g s", d.Seconds())
	}
}

// ratio is a/b, or NaN when b is not positive (no reference measured).
func ratio(a, b float64) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return a / b
}

func fmtRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", r)
}

func fmtMiB(bytes int64) string {
	return fmt.Sprintf("%.2f MiB", float64(bytes)/(1<<20))
}
