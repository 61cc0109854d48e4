package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/internal/freeport"
	"golang.org/x/sys/unix"
)

const (
	// depsTarget: the goal for dependency-open → child-start at the
	// default --wait-interval (1s).
	depsTarget = 100 * time.Millisecond
	// depsTargetP90: the goal for the 90th percentile.
	depsTargetP90 = 200 * time.Millisecond
	// depsDelayMin, depsDelayMax bound the uniform delay after which the
	// bench opens the dependency's port.
	depsDelayMin = 200 * time.Millisecond
	depsDelayMax = 3 * time.Second
	// depsSeed makes the delays the same from run to run.
	depsSeed = 0x6c6966656379636c
)

// depsTool is one way to wait for tcp://127.0.0.1:PORT and then start cmd.
type depsTool struct {
	name  string
	argv  func(port int, cmd ...string) []string
	usage string
	// subjectDefault marks lifecycled at its default --wait-interval: the
	// one the verdict is about.
	subjectDefault bool
	reference      bool // wait-for-it: every ratio is against it
}

// depsSection measures three things of lifecycled's dependency wait and
// probe server: how long after a dependency's port opens the child starts
// (side by side with wait-for-it), how fast /readyz and /metrics answer
// under wrk, and the CPU lifecycled burns idling with a 1 s HTTP readiness
// probe.
func depsSection(b *bench) (*table, error) {
	var subject *wrapper
	for _, w := range b.wrappers {
		if w.subject {
			subject = w
		}
	}
	tools := []depsTool{
		{name: "lifecycled", subjectDefault: true,
			usage: "`lifecycled --wait tcp://127.0.0.1:P -- HELPER`",
			argv: func(port int, cmd ...string) []string {
				return append([]string{subject.path, "--wait", fmt.Sprintf("tcp://127.0.0.1:%d", port), "--"}, cmd...)
			}},
		{name: "lifecycled --wait-interval 100ms",
			usage: "`lifecycled --wait tcp://127.0.0.1:P --wait-interval 100ms -- HELPER`",
			argv: func(port int, cmd ...string) []string {
				return append([]string{subject.path, "--wait", fmt.Sprintf("tcp://127.0.0.1:%d", port), "--wait-interval", "100ms", "--"}, cmd...)
			}},
	}
	var notes []string
	if wfi, err := exec.LookPath("wait-for-it"); err == nil {
		tools = append(tools, depsTool{name: "wait-for-it", reference: true,
			usage: "`wait-for-it -q -t 0 127.0.0.1:P -- HELPER`",
			argv: func(port int, cmd ...string) []string {
				return append([]string{wfi, "-q", "-t", "0", fmt.Sprintf("127.0.0.1:%d", port), "--"}, cmd...)
			}})
	} else {
		notes = append(notes, "wait-for-it not found: no reference for the ratio")
	}

	t := &table{
		title: "Dependencies and probes: wait latency, /readyz under load, idle probing",
		intro: fmt.Sprintf("**Dependency wait.** Each tool waits for tcp://127.0.0.1:P, then starts HELPER (this binary's "+
			"`helper stamp FILE`, which writes CLOCK_MONOTONIC as its first act and exits). The bench opens a listener on P "+
			"after a delay drawn uniformly from [%s, %s] (seed fixed: the same %d delays for every tool; every delay is run "+
			"under each tool in turn, the order rotating from delay to delay) and records CLOCK_MONOTONIC right after listen(2). "+
			"Latency = HELPER's stamp − open time: it includes the tool's poll interval and its exec of HELPER (and HELPER's "+
			"Go runtime start, the same for every tool). lifecycled retries with exponential backoff from 50 ms up to "+
			"--wait-interval (default 1s), doubling every 2 s waited while the port refuses; wait-for-it polls once a second.",
			fmtDur(depsDelayMin), fmtDur(depsDelayMax), b.set.depsSamples),
		header: []string{"tool", "samples", "median", "p90", "max", "median ÷ wait-for-it", "verdict (median ≤ 100 ms, p90 ≤ 200 ms at default interval)"},
	}
	if subject == nil {
		return t, errors.New("no lifecycled binary")
	}

	lat, err := depsLatencies(b, tools)
	if err != nil {
		return t, err
	}
	var refMedian time.Duration
	for _, tl := range tools {
		if tl.reference {
			refMedian = median(lat[tl.name])
		}
	}
	for _, tl := range tools {
		xs := slices.Clone(lat[tl.name])
		slices.Sort(xs)
		med := percentile(xs, 50)
		v := "—"
		if tl.subjectDefault {
			p90 := percentile(xs, 90)
			measured := fmt.Sprintf("median %s, p90 %s (wait-for-it: median %s)", fmtDur(med), fmtDur(p90), fmtDur(refMedian))
			vd := check(fmt.Sprintf("dependency open → child start, median ≤ %s at the default --wait-interval", fmtDur(depsTarget)),
				float64(med), float64(depsTarget), measured)
			vp := check(fmt.Sprintf("dependency open → child start, p90 ≤ %s at the default --wait-interval", fmtDur(depsTargetP90)),
				float64(p90), float64(depsTargetP90), measured)
			t.verdicts = append(t.verdicts, vd, vp)
			v = vd.String() + "; " + vp.String()
		}
		t.rows = append(t.rows, []string{tl.name, fmt.Sprint(len(xs)), fmtDur(med), fmtDur(percentile(xs, 90)), fmtDur(xs[len(xs)-1]),
			fmtRatio(ratio(float64(med), float64(refMedian))), v})
	}
	var usages []string
	for _, tl := range tools {
		usages = append(usages, tl.usage)
	}
	notes = append(notes, "Commands: "+strings.Join(usages, "; "))
	notes = append(notes, backoffNote())
	cost, err := depsCost(b, subject)
	if err != nil {
		return t, fmt.Errorf("cost of the schedule: %w", err)
	}
	notes = append(notes, cost)

	more, err := depsProbeLoad(b, subject)
	notes = append(notes, more...)
	t.notes = notes
	return t, err
}

func median(xs []time.Duration) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return percentile(s, 50)
}

// backoffNote says what the schedule (probes/wait.go: first retry after
// 50 ms; while the port refuses, the pause doubles every 2 s waited, capped
// at --wait-interval) implies for a port opening at a uniform moment in
// [0.2 s, 3 s].
func backoffNote() string {
	return "What the schedule implies: while the port refuses, lifecycled pauses 50 ms at first, 71 ms after 1 s, 100 ms " +
		"after 2 s, 141 ms after 3 s (less up to a quarter of jitter), reaching the 1s --wait-interval after 8.6 s; so a " +
		"port opening at a uniform moment in [0.2 s, 3 s] is seen ~40 ms later on average, at most ~140 ms. A target that " +
		"answers (an HTTP status, a gRPC NOT_SERVING, DNS) is backed off per attempt instead: 50, 100, 200, 400, 800 ms, " +
		"then the cap, since every check costs the dependency work."
}

// depsLatencies runs every tool once per delay and returns the latencies
// by tool name.
func depsLatencies(b *bench, tools []depsTool) (map[string][]time.Duration, error) {
	rng := rand.New(rand.NewPCG(depsSeed, 1))
	delays := make([]time.Duration, b.set.depsSamples)
	for i := range delays {
		delays[i] = depsDelayMin + time.Duration(rng.Int64N(int64(depsDelayMax-depsDelayMin)+1))
	}
	b.progress("deps: %d delays × %d tools", len(delays), len(tools))
	out := map[string][]time.Duration{}
	for i, d := range delays {
		for j := range tools {
			tl := tools[(i+j)%len(tools)]
			l, err := depsOnce(b, tl, d, i)
			if err != nil {
				return out, fmt.Errorf("%s, delay %s: %w", tl.name, fmtDur(d), err)
			}
			out[tl.name] = append(out[tl.name], l)
		}
	}
	return out, nil
}

// depsOnce starts tl waiting for a free port, opens the port after delay
// and returns child start − open.
func depsOnce(b *bench, tl depsTool, delay time.Duration, i int) (time.Duration, error) {
	port, err := freeport.Loopback()
	if err != nil {
		return 0, err
	}
	stamp := filepath.Join(b.tmp, fmt.Sprintf("deps-%d-%d.stamp", i, port))
	defer os.Remove(stamp)
	argv := tl.argv(port, b.helper("stamp", stamp)...)
	pid, err := b.spawn(argv, nil, nil, nil, true)
	if err != nil {
		return 0, err
	}
	time.Sleep(delay)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	opened := monoNow()
	if err != nil {
		stop(pid, 2*time.Second)
		return 0, fmt.Errorf("open the dependency: %w", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	ws, killed, err := waitTimeout(pid, 10*time.Second)
	if killed {
		_ = unix.Kill(-pid, unix.SIGKILL)
		return 0, fmt.Errorf("%s did not start the child within 10 s of the port opening", tl.name)
	}
	if err != nil {
		return 0, err
	}
	if ws.ExitStatus() != 0 || ws.Signaled() {
		return 0, fmt.Errorf("%s: %s", strings.Join(argv, " "), describeStatus(ws))
	}
	data, err := os.ReadFile(stamp)
	if err != nil {
		return 0, fmt.Errorf("no stamp from the child: %w", err)
	}
	started, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad stamp %q", data)
	}
	if started < opened {
		return 0, fmt.Errorf("child started %s before the port opened", fmtDur(time.Duration(opened-started)))
	}
	return time.Duration(started - opened), nil
}

// depsProbeLoad runs lifecycled with --listen and a 1 s HTTP readiness
// probe of the http helper; measures its idle CPU, then /readyz, /metrics
// and the app itself under wrk. It returns one note per measurement.
func depsProbeLoad(b *bench, subject *wrapper) ([]string, error) {
	lport, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	aport, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", lport)
	app := fmt.Sprintf("127.0.0.1:%d", aport)
	argv := append([]string{subject.path, "--listen", listen, "--ready", "http://" + app + "/", "--ready-period", "1s", "--"},
		b.helper("http", app)...)
	pid, err := b.spawn(argv, nil, nil, nil, true)
	if err != nil {
		return nil, err
	}
	defer stop(pid, 5*time.Second)
	cmd := "`lifecycled --listen 127.0.0.1:P --ready http://127.0.0.1:Q/ --ready-period 1s -- bench helper http 127.0.0.1:Q`"

	readyz := "http://" + listen + "/readyz"
	if err := waitHTTP200(readyz, 10*time.Second); err != nil {
		return nil, fmt.Errorf("lifecycled never became ready: %w", err)
	}

	// Idle: ready, probing once a second, nothing else.
	var notes []string
	time.Sleep(time.Second)
	before, err := readProc(pid)
	if err != nil {
		return nil, err
	}
	b.progress("deps: idle CPU with a 1 s HTTP probe over %s", b.set.depsIdleWindow)
	start := time.Now()
	time.Sleep(b.set.depsIdleWindow)
	after, err := readProc(pid)
	window := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("lifecycled exited during the idle window: %w", err)
	}
	notes = append(notes, fmt.Sprintf("**Idle with a 1 s HTTP readiness probe** (%s, %s window, lifecycled alone, not its child): "+
		"CPU %.2f %% of a core from utime+stime (10 ms ticks), %.3f %% from schedstat; %.1f wake-ups/s; VmRSS %s.",
		cmd, fmtDur(window),
		float64(after.ticks-before.ticks)/clockTicks/window.Seconds()*100,
		float64(after.cpuNanos-before.cpuNanos)/float64(window.Nanoseconds())*100,
		float64(after.switches-before.switches)/window.Seconds(), fmtMiB(after.rssKiB*1024)))

	if _, err := exec.LookPath("wrk"); err != nil {
		return append(notes, "wrk not found: /readyz and /metrics not loaded"), nil
	}
	for _, l := range []struct {
		what, url string
		d         time.Duration
	}{
		{"/readyz", readyz, b.set.depsLoad},
		{"/metrics", "http://" + listen + "/metrics", b.set.depsMetricsLoad},
		{"the app itself (baseline: a bare Go net/http server)", "http://" + app + "/", b.set.depsMetricsLoad},
	} {
		b.progress("deps: wrk %s for %s", l.url, l.d)
		r, err := runWrk(l.url, l.d)
		if err != nil {
			return notes, fmt.Errorf("wrk %s: %w", l.what, err)
		}
		notes = append(notes, fmt.Sprintf("**%s under load** (`wrk -t2 -c16 -d%s --latency`): %.0f req/s, latency p50 %s, p99 %s%s.",
			l.what, l.d, r.rps, fmtDur(r.p50), fmtDur(r.p99), r.errors))
	}
	if _, err := readProc(pid); err != nil {
		return notes, errors.New("lifecycled exited under load")
	}
	return notes, nil
}

func waitHTTP200(url string, timeout time.Duration) error {
	c := &http.Client{Timeout: 500 * time.Millisecond}
	deadline := time.Now().Add(timeout)
	last := errors.New("timeout")
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return last
}

type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   string // ", 12 non-2xx" etc., empty if none
}

func runWrk(url string, d time.Duration) (wrkResult, error) {
	secs := max(1, int(math.Round(d.Seconds())))
	cmd := exec.Command("wrk", "-t2", "-c16", fmt.Sprintf("-d%ds", secs), "--latency", url)
	cmd.WaitDelay = time.Second
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(d + 20*time.Second):
		_ = cmd.Process.Kill()
		<-done
		return wrkResult{}, errors.New("timed out")
	}
	if err != nil {
		return wrkResult{}, fmt.Errorf("%w: %s", err, lastLine(string(out)))
	}
	return parseWrk(string(out))
}

// parseWrk reads Requests/sec, the 50% and 99% lines of --latency and any
// error counts from wrk's output.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, have50, have99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("bad Requests/sec %q", f[1])
			}
			r.rps, haveRPS = v, true
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := parseWrkDur(f[1])
			if err != nil {
				return r, err
			}
			if f[0] == "50%" {
				r.p50, have50 = d, true
			} else {
				r.p99, have99 = d, true
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			r.errors += ", " + strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")) + " non-2xx/3xx responses"
		case strings.HasPrefix(line, "Socket errors:"):
			r.errors += ", socket errors: " + strings.TrimSpace(strings.TrimPrefix(line, "Socket errors:"))
		}
	}
	if !haveRPS || !have50 || !have99 {
		return r, fmt.Errorf("no Requests/sec or latency distribution in wrk's output: %s", lastLine(out))
	}
	return r, nil
}

// parseWrkDur parses wrk's latencies: 412.00us, 1.23ms, 2.01s, 1.00m.
func parseWrkDur(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("bad wrk latency %q", s)
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("bad wrk latency %q", s)
}

// stampMain is `bench helper stamp FILE`: it writes CLOCK_MONOTONIC to FILE
// first thing and exits, so FILE says when the child started.
func stampMain(args []string) int {
	at := monoNow()
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "bench helper stamp: want FILE")
		return 2
	}
	if err := os.WriteFile(args[0], []byte(strconv.FormatInt(at, 10)+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// httpMain is `bench helper http ADDR`: an HTTP server answering 200 "ok"
// to everything on ADDR, until a signal kills it.
func httpMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "bench helper http: want ADDR")
		return 2
	}
	err := http.ListenAndServe(args[0], http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}))
	fmt.Fprintln(os.Stderr, err)
	return 1
}
