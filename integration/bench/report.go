package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// table is one section of the report: what was measured and how (intro),
// the rows, and the verdicts on lifecycled's targets.
type table struct {
	title    string
	intro    string
	header   []string
	rows     [][]string
	notes    []string
	verdicts []verdict
}

// verdictCell is the verdict column of w's row: "—", or for the wrapper
// under test the verdict made by vd, which joins the table's verdicts.
func (t *table) verdictCell(w *wrapper, vd func() verdict) string {
	if !w.subject {
		return "—"
	}
	v := vd()
	t.verdicts = append(t.verdicts, v)
	return v.String()
}

// verdict is one of lifecycled's targets and whether this run met it.
type verdict struct {
	target   string // "startup overhead ≤ 2.0× tini"
	measured string // "1.41×"
	met      bool
	known    bool // false when the target could not be measured (no tini)
}

func (v verdict) String() string {
	switch {
	case !v.known:
		return "n/a"
	case v.met:
		return "met"
	default:
		return "**NOT met**"
	}
}

// check is the verdict on "value ≤ limit"; NaN (nothing to compare with)
// gives an unknown verdict.
func check(target string, value, limit float64, measured string) verdict {
	if math.IsNaN(value) {
		return verdict{target: target, measured: measured}
	}
	return verdict{target: target, measured: measured, met: value <= limit, known: true}
}

func allMet(tables []*table) bool {
	for _, t := range tables {
		for _, v := range t.verdicts {
			if v.known && !v.met {
				return false
			}
		}
	}
	return true
}

// writeMarkdown prints t as a Markdown table with aligned columns.
func (t *table) writeMarkdown(w io.Writer, number int) {
	if number > 0 {
		fmt.Fprintf(w, "## %d. %s\n\n", number, t.title)
	} else {
		fmt.Fprintf(w, "## %s\n\n", t.title)
	}
	if t.intro != "" {
		fmt.Fprintf(w, "%s\n\n", t.intro)
	}
	if len(t.header) > 0 {
		writeGrid(w, t.header, t.rows)
		fmt.Fprintln(w)
	}
	for _, n := range t.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(t.notes) > 0 {
		fmt.Fprintln(w)
	}
}

func writeGrid(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i := range min(len(r), len(width)) {
			width[i] = max(width[i], utf8.RuneCountInString(r[i]))
		}
	}
	line := func(cells []string) {
		var sb strings.Builder
		sb.WriteString("|")
		for i := range width {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			sb.WriteString(" " + c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)) + " |")
		}
		fmt.Fprintln(w, sb.String())
	}
	line(header)
	sep := make([]string, len(width))
	for i := range width {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
}

// writeReport prints the whole document: machine, summary of targets, then
// every section.
func writeReport(w io.Writer, machine *table, tables []*table) {
	fmt.Fprintf(w, "# lifecycled benchmark\n\n")
	machine.writeMarkdown(w, 0)

	summary := &table{
		title:  "Targets",
		intro:  "lifecycled's targets, each measured side by side with the peers in this run (sections below).",
		header: []string{"target", "measured", "verdict"},
	}
	for _, t := range tables {
		for _, v := range t.verdicts {
			summary.rows = append(summary.rows, []string{v.target, v.measured, v.String()})
		}
	}
	summary.writeMarkdown(w, 0)
	for i, t := range tables {
		t.writeMarkdown(w, i+1)
	}
}

// describeMachine is the report's first table: when, where, with what.
func describeMachine(b *bench) *table {
	t := &table{title: "Machine", header: []string{"", ""}}
	add := func(k, v string) { t.rows = append(t.rows, []string{k, v}) }
	add("date", time.Now().UTC().Format(time.RFC3339))
	add("nproc", fmt.Sprint(nproc()))
	add("CPU", cpuModel())
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		add("kernel", unix.ByteSliceToString(u.Release[:])+" "+unix.ByteSliceToString(u.Version[:]))
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		add("load average at start", strings.Join(strings.Fields(string(la))[:3], " "))
	}
	add("bench built with", runtime.Version())
	add("mode", b.set.mode)
	for _, w := range b.wrappers {
		path := w.path
		if w.floor {
			path = "gofloor"
		}
		add(w.name, path+" — "+versionOf(w))
	}
	for _, s := range b.skipped {
		add("not measured", s)
	}
	return t
}

func nproc() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		return set.Count()
	}
	return runtime.NumCPU()
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// versionOf asks the wrapper for its version; every one of them answers
// --version or version (catatonit pretends to be tini, for Docker's sake).
func versionOf(w *wrapper) string {
	if w.floor {
		return "minimal Go init (integration/bench/testdata/gofloor) built with " + runtime.Version() + ", CGO_ENABLED=0 -trimpath -s -w"
	}
	arg := "--version"
	if w.subject {
		arg = "version"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, w.path, arg).CombinedOutput()
	v := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	if v == "" {
		return "version unknown"
	}
	return v
}
