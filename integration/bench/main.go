// Command bench measures lifecycled side by side with tini, dumb-init and
// catatonit on this machine, in one run, and prints Markdown tables whose
// verdicts are ratios against tini measured in the same run: on shared,
// noisy machines only a peer measured side by side is a fair yardstick.
//
//	go run ./integration/bench -bin bin/lifecycled [-quick] [-o results.md] [-only startup,signal] [-strict]
//
// Every measurement is a section: a function that takes the bench and
// returns one table (and the verdicts on lifecycled's targets). Samples are
// interleaved round-robin across the wrappers, never all of one wrapper
// then all of the next, so drift in the machine's load hits all alike.
// To add a measurement (dependency-wait latency, drain behaviour), write a
// func(*bench) (*table, error) in a file of its own and list it in sections.
//
// The binary is also its own helper: `bench helper receiver` is the signal
// receiver and `bench helper reap` the orphan maker of the reaping test, so
// nothing but the wrappers themselves has to be installed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// section is one measurement: name is what -only selects.
type section struct {
	name string
	run  func(b *bench) (*table, error)
}

// sections in the order they run and are printed.
var sections = []section{
	{"startup", startupSection},
	{"signal", signalSection},
	{"reap", reapSection},
	{"idle", idleSection},
	{"size", sizeSection},
	{"deps", depsSection},
	{"drain", drainSection},
}

// settings are the sample counts and durations of one run.
type settings struct {
	mode string

	startupRuns int // runs of `W -- /bin/true` per wrapper

	signalSamples int           // signals per wrapper
	signalGap     time.Duration // mean pause between two signals

	reapOrphans int           // orphans per round
	reapRounds  int           // rounds per wrapper
	reapTimeout time.Duration // longest wait for the last zombie

	idleSettle time.Duration // supervise sleep this long before measuring
	idleWindow time.Duration // CPU is measured over this window

	depsSamples     int           // dependency-open delays, each run under every tool
	depsLoad        time.Duration // wrk duration against /readyz
	depsMetricsLoad time.Duration // wrk duration against /metrics and the bare app
	depsIdleWindow  time.Duration // idle CPU of lifecycled with a 1 s HTTP probe
}

func defaultSettings() settings {
	return settings{
		mode:          "default",
		startupRuns:   1000,
		signalSamples: 2000,
		signalGap:     2 * time.Millisecond,
		reapOrphans:   2000,
		reapRounds:    5,
		reapTimeout:   10 * time.Second,
		idleSettle:    2 * time.Second,
		idleWindow:    5 * time.Second,

		depsSamples:     20,
		depsLoad:        5 * time.Second,
		depsMetricsLoad: 3 * time.Second,
		depsIdleWindow:  10 * time.Second,
	}
}

// quickSettings are the defaults with small sample counts.
func quickSettings() settings {
	s := defaultSettings()
	s.mode = "quick"
	s.startupRuns, s.signalSamples, s.reapRounds = 100, 200, 1
	s.idleWindow = 3 * time.Second
	s.depsSamples, s.depsLoad, s.depsMetricsLoad, s.depsIdleWindow = 6, 3*time.Second, 2*time.Second, 5*time.Second
	return s
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "helper" {
		os.Exit(helperMain(os.Args[2:]))
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin/lifecycled", "lifecycled binary under test (build it with `make build`)")
	quick := fs.Bool("quick", false, "small sample counts: the whole run takes under a minute")
	out := fs.String("o", "", "also write the Markdown report to this `FILE`")
	only := fs.String("only", "", "run only these comma-separated sections: "+sectionNames())
	tini := fs.String("tini", "/usr/bin/tini", "tini binary (the reference of every ratio)")
	tiniStatic := fs.String("tini-static", "/usr/bin/tini-static", "tini-static binary (skipped if missing)")
	dumbInit := fs.String("dumb-init", "/usr/bin/dumb-init", "dumb-init binary (skipped if missing)")
	catatonit := fs.String("catatonit", "/usr/bin/catatonit", "catatonit binary (skipped if missing)")
	goFloor := fs.Bool("go-floor", true, "also measure go-floor, a minimal Go init built into this program")
	strict := fs.Bool("strict", false, "exit 3 if lifecycled misses a target")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	selected, err := selectSections(*only)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}

	set := defaultSettings()
	if *quick {
		set = quickSettings()
	}
	b, err := newBench(set, *bin, peerPaths{tini: *tini, tiniStatic: *tiniStatic, dumbInit: *dumbInit, catatonit: *catatonit, goFloor: *goFloor}, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	defer b.close()

	start := time.Now()
	machine := describeMachine(b)
	var tables []*table
	for _, s := range selected {
		b.progress("== %s", s.name)
		runtime.GC()
		t, err := s.run(b)
		if err != nil {
			b.progress("%s failed: %v", s.name, err)
			if t == nil {
				t = &table{title: s.name}
			}
			t.notes = append(t.notes, fmt.Sprintf("**section failed:** %v", err))
		}
		tables = append(tables, t)
	}
	machine.rows = append(machine.rows, []string{"bench run time", time.Since(start).Round(time.Second).String()})

	var doc strings.Builder
	writeReport(&doc, machine, tables)
	_, _ = io.WriteString(stdout, doc.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(doc.String()), 0o644); err != nil {
			fmt.Fprintf(stderr, "bench: write report: %v\n", err)
			return 1
		}
		b.progress("report written to %s", *out)
	}
	if *strict && !allMet(tables) {
		return 3
	}
	return 0
}

func sectionNames() string {
	names := make([]string, len(sections))
	for i, s := range sections {
		names[i] = s.name
	}
	return strings.Join(names, ",")
}

func selectSections(only string) ([]section, error) {
	if only == "" {
		return sections, nil
	}
	var out []section
	for _, name := range strings.Split(only, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, s := range sections {
			if s.name == name {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown section %q: want one of %s", name, sectionNames())
		}
	}
	return out, nil
}
