package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const signalTarget = 1.5 // lifecycled's forwarding latency ≤ 1.5× tini's

// receiverProc is one running receiver, bare or under a wrapper.
type receiverProc struct {
	c     candidate
	pid   int // the process the bench signals: the wrapper, or the bare receiver
	lines *bufio.Reader
	out   *os.File // read end of the receiver's stdout
	stdin *os.File // write end of the receiver's stdin: closing it stops the receiver
}

// startReceiver starts the receiver helper under c's wrapper (or bare) and
// waits for its "ready" line.
func (b *bench) startReceiver(c candidate) (*receiverProc, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	argv := b.helper("receiver")
	if c.w != nil {
		argv = c.w.command(argv...)
	}
	pid, err := b.spawn(argv, inR, outW, nil, true)
	_ = outW.Close()
	_ = inR.Close()
	if err != nil {
		_ = outR.Close()
		_ = inW.Close()
		return nil, err
	}
	p := &receiverProc{c: c, pid: pid, lines: bufio.NewReader(outR), out: outR, stdin: inW}
	_ = outR.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := p.lines.ReadString('\n')
	if err != nil || line != "ready\n" {
		p.stop()
		return nil, fmt.Errorf("%s: receiver did not get ready (%q, %v)", c.name, line, err)
	}
	return p, nil
}

// sample sends SIGUSR1 to the wrapper and returns the time until the
// receiver had it, both read from CLOCK_MONOTONIC.
func (p *receiverProc) sample() (time.Duration, error) {
	_ = p.out.SetReadDeadline(time.Now().Add(2 * time.Second))
	sent := monoNow()
	if err := unix.Kill(p.pid, unix.SIGUSR1); err != nil {
		return 0, fmt.Errorf("%s: kill: %w", p.c.name, err)
	}
	line, err := p.lines.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("%s: no answer to SIGUSR1: %w", p.c.name, err)
	}
	got, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: bad answer %q", p.c.name, line)
	}
	return time.Duration(got - sent), nil
}

func (p *receiverProc) stop() {
	_ = p.stdin.Close()
	if _, killed, _ := waitTimeout(p.pid, 5*time.Second); killed {
		_ = unix.Kill(-p.pid, unix.SIGKILL)
	}
	_ = p.out.Close()
}

// signalSection measures how long a SIGUSR1 sent to the wrapper takes to
// reach the supervised child. All receivers run at once and are signalled
// in turn, one signal in flight at a time, with a random pause between
// signals so that each finds its wrapper idle, as a real signal does.
func signalSection(b *bench) (*table, error) {
	cs := b.candidates(true)
	var procs []*receiverProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for _, c := range cs {
		p, err := b.startReceiver(c)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	time.Sleep(200 * time.Millisecond) // let every wrapper settle after its start
	byName := map[string]*receiverProc{}
	for _, p := range procs {
		byName[p.c.name] = p
	}

	samples := map[string][]time.Duration{}
	gap := func() {
		g := b.set.signalGap
		time.Sleep(g/2 + rand.N(g)) // uniform in [gap/2, 3·gap/2)
	}
	// Warm-up: a few signals each, not counted.
	if err := roundRobin(cs, 10, func(_ int, c candidate) error {
		gap()
		_, err := byName[c.name].sample()
		return err
	}); err != nil {
		return nil, err
	}
	b.progress("signal: %d signals × %d candidates", b.set.signalSamples, len(cs))
	err := roundRobin(cs, b.set.signalSamples, func(_ int, c candidate) error {
		gap()
		d, err := byName[c.name].sample()
		samples[c.name] = append(samples[c.name], d)
		return err
	})
	if err != nil {
		return nil, err
	}

	bare := summarize(samples["bare"])
	added := func(name string) time.Duration { return summarize(samples[name]).median - bare.median }
	var refAdded, refE2E float64
	if r := b.reference(); r != nil {
		refAdded = float64(added(r.name))
		refE2E = float64(summarize(samples[r.name]).median)
	}

	t := &table{
		title: "Signal-forwarding latency: SIGUSR1 to the wrapper → receipt in the child",
		intro: fmt.Sprintf("All wrappers run at once, each supervising the receiver helper (Go, `signal.Notify`); the bench "+
			"reads CLOCK_MONOTONIC, sends `kill(wrapper, SIGUSR1)`, and the receiver writes the CLOCK_MONOTONIC time it "+
			"got the signal. %d signals per candidate, interleaved round-robin, one in flight at a time, %s–%s apart. "+
			"\"bare\" signals the receiver directly: the cost of delivery to a Go receiver, common to every row. "+
			"Forwarding latency = end-to-end − bare median; the target is on it.",
			b.set.signalSamples, fmtDur(b.set.signalGap/2), fmtDur(b.set.signalGap*3/2)),
		header: []string{"wrapper", "median end-to-end", "p99 end-to-end", "median forwarding", "p99 forwarding", "ratio vs tini (end-to-end)", "ratio vs tini (forwarding)", "verdict (forwarding ≤ 1.5× tini)"},
	}
	for _, c := range cs {
		s := summarize(samples[c.name])
		if c.w == nil {
			t.rows = append(t.rows, []string{"bare", fmtDur(s.median), fmtDur(s.p99), "—", "—", "—", "—", "—"})
			continue
		}
		fwdMed, fwdP99 := s.median-bare.median, s.p99-bare.median
		r := ratio(float64(fwdMed), refAdded)
		v := t.verdictCell(c.w, func() verdict {
			return check(fmt.Sprintf("signal-forwarding latency ≤ %.1f× tini", signalTarget), r, signalTarget,
				fmt.Sprintf("%s (%s vs tini %s)", fmtRatio(r), fmtDur(fwdMed), fmtDur(time.Duration(refAdded))))
		})
		t.rows = append(t.rows, []string{c.name, fmtDur(s.median), fmtDur(s.p99), fmtDur(fwdMed), fmtDur(fwdP99),
			fmtRatio(ratio(float64(s.median), refE2E)), fmtRatio(r), v})
	}
	if f, subj := b.floor(), b.subject(); f != nil && subj != nil {
		// Issue 13: lifecycled's forwarding is Go's (os/signal, kill) and
		// nothing of its own on top.
		d := added(subj.name) - added(f.name)
		t.verdicts = append(t.verdicts, check(fmt.Sprintf("signal forwarding − go-floor's ≤ %s", fmtDur(forwardOverFloorGoal)),
			float64(d), float64(forwardOverFloorGoal), fmt.Sprintf("%s (go-floor %s)", fmtDur(d), fmtDur(added(f.name)))))
	}
	t.notes = append(t.notes, floorNote(b, added, "forwarding latency")...)
	t.notes = append(t.notes, "Command lines: "+commandLines(b, "RECEIVER"))
	return t, nil
}

// commandLines lists each wrapper's invocation around cmd, for the notes.
func commandLines(b *bench, cmd string) string {
	var parts []string
	for _, w := range b.wrappers {
		parts = append(parts, "`"+strings.Replace(w.usage(cmd), w.path, w.name, 1)+"`")
	}
	return strings.Join(parts, ", ")
}

// forwardOverFloorGoal is issue 13's bound on what lifecycled adds to
// go-floor's forwarding latency.
const forwardOverFloorGoal = 10 * time.Microsecond
