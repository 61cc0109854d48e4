package main

import (
	"fmt"
	"time"

	"github.com/lifecycled/lifecycled/supervisor"
)

const startupTarget = 2.0 // lifecycled's startup overhead ≤ 2.0× tini's

// candidate is something whose samples a section collects: a wrapper, or
// nil for the bare baseline.
type candidate struct {
	name string
	w    *wrapper
}

func (b *bench) candidates(withBare bool) []candidate {
	var cs []candidate
	if withBare {
		cs = append(cs, candidate{name: "bare"})
	}
	for _, w := range b.wrappers {
		cs = append(cs, candidate{name: w.name, w: w})
	}
	return cs
}

// roundRobin calls f for every candidate, rounds times, rotating the order
// in every round so each candidate takes every position equally often.
func roundRobin(cs []candidate, rounds int, f func(round int, c candidate) error) error {
	for r := range rounds {
		for j := range cs {
			if err := f(r, cs[(r+j)%len(cs)]); err != nil {
				return err
			}
		}
	}
	return nil
}

// startupSection times `W -- /bin/true` against a bare /bin/true: what a
// wrapper adds to every container start (and every `lifecycled probe` exec
// probe).
func startupSection(b *bench) (*table, error) {
	const target = "/bin/true"
	cs := b.candidates(true)
	// lifecycled with --listen too: the registry, collectors and HTTP
	// server it then builds are part of its start-up (port 0: the kernel
	// picks a free one, so rounds never collide).
	if s := b.subject(); s != nil {
		cs = append(cs, candidate{name: listenName, w: &wrapper{name: listenName, path: s.path, argv: dashDash("--listen", "127.0.0.1:0")}})
	}
	samples := map[string][]time.Duration{}
	run := func(c candidate) (time.Duration, error) {
		argv := []string{target}
		if c.w != nil {
			argv = c.w.command(target)
		}
		start := time.Now()
		pid, err := b.spawn(argv, nil, nil, nil, false)
		if err != nil {
			return 0, err
		}
		ws, err := wait(pid)
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		if !ws.Exited() || ws.ExitStatus() != 0 {
			return 0, fmt.Errorf("%s %s: %s", c.name, target, describeStatus(ws))
		}
		return d, nil
	}
	// Warm the page cache and the dynamic loader's caches first.
	if err := roundRobin(cs, 20, func(_ int, c candidate) error { _, err := run(c); return err }); err != nil {
		return nil, err
	}
	b.progress("startup: %d runs × %d candidates", b.set.startupRuns, len(cs))
	err := roundRobin(cs, b.set.startupRuns, func(_ int, c candidate) error {
		d, err := run(c)
		samples[c.name] = append(samples[c.name], d)
		return err
	})
	if err != nil {
		return nil, err
	}

	bare := summarize(samples["bare"])
	overhead := func(name string) (med, p99 time.Duration) {
		s := summarize(samples[name])
		return s.median - bare.median, s.p99 - bare.median
	}
	var ref float64
	if r := b.reference(); r != nil {
		med, _ := overhead(r.name)
		ref = float64(med)
	}

	t := &table{
		title: "Startup overhead: `W -- /bin/true` minus bare `/bin/true`",
		intro: fmt.Sprintf("Wall time from fork to reaped exit, %d runs per candidate, interleaved round-robin "+
			"(order rotated every round) after 20 warm-up rounds. Overhead = wrapper's time − bare /bin/true's median. "+
			"Ratio = median overhead ÷ tini's median overhead.", b.set.startupRuns),
		header: []string{"wrapper", "command line", "median wall", "p99 wall", "median overhead", "p99 overhead", "ratio vs tini", "verdict (≤ 2.0× tini)"},
	}
	for _, c := range cs {
		s := summarize(samples[c.name])
		if c.w == nil {
			t.rows = append(t.rows, []string{"bare", "`" + target + "`", fmtDur(s.median), fmtDur(s.p99), "—", "—", "—", "—"})
			continue
		}
		med, p99 := overhead(c.name)
		r := ratio(float64(med), ref)
		v := t.verdictCell(c.w, func() verdict {
			return check(fmt.Sprintf("startup overhead ≤ %.1f× tini", startupTarget), r, startupTarget,
				fmt.Sprintf("%s (%s vs tini %s)", fmtRatio(r), fmtDur(med), fmtDur(time.Duration(ref))))
		})
		t.rows = append(t.rows, []string{c.name, "`" + c.w.usage(target) + "`", fmtDur(s.median), fmtDur(s.p99), fmtDur(med), fmtDur(p99), fmtRatio(r), v})
	}
	t.notes = append(t.notes, floorNote(b, func(name string) time.Duration { med, _ := overhead(name); return med }, "startup overhead")...)
	if f, subj := b.floor(), b.subject(); f != nil && subj != nil {
		// Issue 13's goals: what lifecycled adds to any Go init, without
		// and with --listen (registry, collectors, HTTP server).
		floorMed, _ := overhead(f.name)
		over := func(name string) time.Duration { med, _ := overhead(name); return med - floorMed }
		for _, g := range []struct {
			name string
			goal time.Duration
		}{{subj.name, startupOverFloorGoal}, {listenName, startupOverFloorListenGoal}} {
			d := over(g.name)
			vd := check(fmt.Sprintf("%s startup − go-floor's ≤ %s", g.name, fmtDur(g.goal)), float64(d), float64(g.goal),
				fmt.Sprintf("%s (go-floor %s)", fmtDur(d), fmtDur(floorMed)))
			t.verdicts = append(t.verdicts, vd)
		}
	}
	return t, nil
}

// Issue 13's goals for the start-up lifecycled adds to go-floor's.
const (
	startupOverFloorGoal       = 1000 * time.Microsecond
	startupOverFloorListenGoal = 1500 * time.Microsecond
)

// listenName is the startup row of lifecycled with --listen set.
const listenName = "lifecycled --listen"

// floorNote splits lifecycled's cost (by metric) into go-floor's — what any
// Go init pays — and lifecycled's own, and says what ratio vs tini the floor
// itself reaches.
func floorNote(b *bench, metric func(name string) time.Duration, what string) []string {
	var subject, floor, ref *wrapper
	for _, w := range b.wrappers {
		switch {
		case w.subject:
			subject = w
		case w.floor:
			floor = w
		case w.reference:
			ref = w
		}
	}
	if subject == nil || floor == nil {
		return nil
	}
	l, f := metric(subject.name), metric(floor.name)
	note := fmt.Sprintf("go-floor (a minimal Go init: os/signal for the same %d signals, ForkExec, wait4 — testdata/gofloor) "+
		"has a %s of %s: %s of lifecycled's %s is Go's floor, %s is lifecycled's own.",
		len(supervisor.ForwardedSignals()), what, fmtDur(f), fmtDur(min(f, l)), fmtDur(l), fmtDur(l-f))
	if ref != nil {
		note += fmt.Sprintf(" The floor alone is %s tini.", fmtRatio(ratio(float64(f), float64(metric(ref.name)))))
	}
	return []string{note}
}
