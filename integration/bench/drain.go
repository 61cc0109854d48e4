package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/integration/lbsim"
	"github.com/lifecycled/lifecycled/internal/proctest"
)

const (
	// drainDelay is lifecycled's --drain-delay in the fixed-delay run the
	// extra-time verdict is about; drainDelayLong is the folklore's 5 s.
	drainDelay     = 2 * time.Second
	drainDelayLong = 5 * time.Second
	// drainQuiet and drainCeiling are the adaptive run's --drain-quiet and
	// --drain-delay.
	drainQuiet   = time.Second
	drainCeiling = 10 * time.Second
	// adaptiveSlack bounds how long after the Balancer dropped the backend
	// the adaptive drain may end, beyond the quiet period.
	adaptiveSlack = 300 * time.Millisecond
	// extraTarget bounds what lifecycled adds to a stop beyond the drain
	// delay and the app's own stop.
	extraTarget = 50 * time.Millisecond
)

// drainCase is one cell of the drain section: the Balancer's propagation
// delay and the clients' total request rate.
type drainCase struct {
	propagation time.Duration
	rate        float64
}

// drainCases: propagation delays below, near and above the 2 s drain delay
// (the last shows what happens when the drain is too short), at a light and
// a busier rate.
func drainCases(quick bool) []drainCase {
	if quick {
		return []drainCase{{time.Second, 200}}
	}
	var cs []drainCase
	for _, rate := range []float64{100, 400} {
		for _, p := range []time.Duration{200 * time.Millisecond, time.Second, 3 * time.Second} {
			cs = append(cs, drainCase{p, rate})
		}
	}
	return cs
}

// drainSection runs lbsim's rolling stop (two backends behind an L4
// balancer that drops a backend a propagation delay after its readiness
// fails; steady keep-alive and new-connection traffic; SIGTERM to one
// backend's init mid-load) under lifecycled, tini and dumb-init, and counts
// the requests that failed. It also measures what each init adds to the
// stop beyond the drain delay and the app's own stop time.
func drainSection(b *bench) (*table, error) {
	inits := drainInits(b)
	if len(inits) == 0 {
		return nil, fmt.Errorf("no lifecycled, tini or dumb-init to run")
	}
	dir, err := os.MkdirTemp("", "lifecycled-bench-drain-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	backend, err := lbsim.BuildBackend(bctx, dir)
	cancel()
	if err != nil {
		return nil, err
	}

	cases := drainCases(b.set.mode == "quick")
	t := &table{
		title: "Drain: failed requests during a rolling stop",
		intro: fmt.Sprintf("Two backends (an HTTP server that calls http.Server.Shutdown on SIGTERM, so it refuses new "+
			"connections at once) behind an L4 balancer on 127.0.0.1 that routes each new connection to a ready backend "+
			"and drops a backend a *propagation* delay after its readiness fails (polled every 100 ms: endpoints + "+
			"kube-proxy lag). Half the workers keep a connection alive, half open one per request. One backend's init "+
			"gets SIGTERM after 1 s of load; the load goes on until propagation + 0.5 s after that init exited. "+
			"lifecycled runs with a fixed `--drain-delay` of %s or %s, or adaptive (`--drain-quiet %s --drain-delay %s`: "+
			"the drain ends once neither a new connection nor a request byte reached the app's port for %s; the kept-alive "+
			"connections pinned to the backend carry requests until the app closes them, so it waits its ceiling), and the "+
			"balancer polls its /readyz; tini and dumb-init have no drain, and the balancer polls the app's own /healthz. "+
			"Extra = SIGTERM→init exit − drain delay − the app's own SIGTERM→exit (fixed delays only). After drop = the app's "+
			"SIGTERM − the moment the balancer dropped the backend. Last byte = when the balancer last sent the stopped backend "+
			"request bytes, from the SIGTERM.",
			drainDelay, drainDelayLong, drainQuiet, drainCeiling, drainQuiet),
		header: []string{"propagation", "rate", "init", "requests", "failed", "failed %", "failures by kind",
			"SIGTERM→exit", "app stop", "extra", "after drop", "last byte"},
	}

	type cell struct {
		c    drainCase
		name string
	}
	results := map[cell]lbsim.RollingStopResult{}
	for i, c := range cases {
		b.progress("drain: propagation %s, %g req/s, %d inits", c.propagation, c.rate, len(inits))
		for j := range inits {
			// Rotate the order from case to case, so no init always
			// runs first on a freshly quiet machine.
			in := inits[(i+j)%len(inits)]
			r, err := runRollingStop(ctx, in, backend, c)
			if err != nil {
				return t, fmt.Errorf("%s, propagation %s, %g req/s: %w", in.name, c.propagation, c.rate, err)
			}
			results[cell{c, in.name}] = r
		}
	}

	var subject, adaptive string
	var failsCovered int64 // lifecycled's failures where a fixed drain covers the propagation
	var adaptiveFails int64
	var adaptiveLate time.Duration // worst (app SIGTERM − drop − quiet) of the adaptive drain
	extras := map[string][]time.Duration{}
	for _, in := range inits {
		if in.init == lbsim.InitLifecycled && in.quiet == 0 && in.delay == drainDelay {
			subject = in.name
		}
		if in.quiet > 0 {
			adaptive = in.name
		}
	}
	for _, c := range cases {
		for _, in := range inits {
			r := results[cell{c, in.name}]
			total := r.Load.OK + r.Load.Failed
			extra, afterDrop, lastByte := "—", "—", "—"
			if in.quiet == 0 {
				extra = fmtDur(r.Extra())
			}
			drop, dropped := droppedAt(r, "a")
			if in.init == lbsim.InitLifecycled && dropped {
				afterDrop = fmtDur(r.TermAfter - drop)
			}
			if r.LastSent != 0 {
				lastByte = fmtDur(r.LastSent)
			}
			t.rows = append(t.rows, []string{
				fmtDur(c.propagation), fmt.Sprintf("%g/s", c.rate), in.name,
				fmt.Sprint(total), fmt.Sprint(r.Load.Failed), fmt.Sprintf("%.2f%%", 100*float64(r.Load.Failed)/float64(max(total, 1))),
				fmtKinds(r.Load.ByKind), fmtDur(r.Stop), fmtDur(r.AppStop), extra, afterDrop, lastByte,
			})
			extras[in.name] = append(extras[in.name], r.Extra())
			if in.init == lbsim.InitLifecycled && in.quiet == 0 && in.delay > c.propagation+lbsim.DefaultPollInterval {
				failsCovered += r.Load.Failed
			}
			if in.name == adaptive {
				adaptiveFails += r.Load.Failed
				// From the end of the traffic it could see: the later
				// of the drop and the last request byte sent to the
				// backend (pinned keep-alive clients send until the
				// app closes their connections).
				late := r.Stop // never dropped: as late as can be
				if dropped {
					late = r.TermAfter - max(drop, r.LastSent) - drainQuiet
				}
				adaptiveLate = max(adaptiveLate, late)
			}
		}
	}
	if adaptive != "" {
		t.verdicts = append(t.verdicts,
			check("adaptive drain: no failed request at any propagation", float64(adaptiveFails), 0, fmt.Sprintf("%d failed", adaptiveFails)),
			check(fmt.Sprintf("adaptive drain ends within quiet period + %s of the drop or the last request byte, whichever is later", fmtDur(adaptiveSlack)),
				float64(adaptiveLate), float64(adaptiveSlack), fmt.Sprintf("worst: quiet period + %s", fmtDur(adaptiveLate))))
	}
	if subject != "" {
		// The median, not the worst run: on a shared machine one
		// descheduled process adds tens of milliseconds to any init.
		s := summarize(extras[subject])
		measured := fmt.Sprintf("median %s, worst %s", fmtDur(s.median), fmtDur(s.max))
		if r := b.reference(); r != nil && len(extras[r.name]) > 0 {
			measured += fmt.Sprintf(" (%s: median %s)", r.name, fmtDur(summarize(extras[r.name]).median))
		}
		t.verdicts = append(t.verdicts,
			check("no failed request during a rolling stop when a fixed --drain-delay covers the propagation",
				float64(failsCovered), 0, fmt.Sprintf("%d failed", failsCovered)),
			check(fmt.Sprintf("stop time beyond drain delay and app stop ≤ %s", fmtDur(extraTarget)),
				float64(s.median), float64(extraTarget), measured))
	}
	t.notes = append(t.notes,
		"A propagation delay longer than a fixed drain delay fails requests under lifecycled too: a fixed --drain-delay must "+
			"exceed the time the cluster takes to drop the pod from its endpoints (5 s is the usual advice), and then every "+
			"stop takes that long. The adaptive drain watches new connections and request bytes to the app's port (netlink "+
			"sock_diag, tcp_info) and ends a quiet period after the last, whatever the propagation.",
		"Kept-alive connections stay on their backend after the drop, as conntrack entries do; they survive the stop "+
			"because the app's Shutdown closes them while idle and Go's http.Transport retries an idempotent request "+
			"on a reused connection that was closed.",
		"Commands: "+strings.Join(drainUsages(inits), "; "))
	return t, nil
}

// drainInit is one init of the drain section; delay and quiet are
// lifecycled's --drain-delay and --drain-quiet.
type drainInit struct {
	name         string
	init         lbsim.Init
	path         string
	delay, quiet time.Duration
}

// drainInits picks lifecycled (fixed 2 s, fixed 5 s, adaptive), tini and
// dumb-init among the bench's wrappers, in that order.
func drainInits(b *bench) []drainInit {
	var out []drainInit
	for _, want := range []lbsim.Init{lbsim.InitLifecycled, lbsim.InitTini, lbsim.InitDumbInit} {
		for _, w := range b.wrappers {
			if want == lbsim.InitLifecycled && w.subject {
				out = append(out,
					drainInit{name: fmt.Sprintf("%s %s", w.name, drainDelay), init: want, path: w.path, delay: drainDelay},
					drainInit{name: fmt.Sprintf("%s %s", w.name, drainDelayLong), init: want, path: w.path, delay: drainDelayLong},
					drainInit{name: w.name + " adaptive", init: want, path: w.path, delay: drainCeiling, quiet: drainQuiet})
				break
			}
			if want != lbsim.InitLifecycled && w.name == string(want) {
				out = append(out, drainInit{name: w.name, init: want, path: w.path})
				break
			}
		}
	}
	return out
}

// droppedAt is when, after the SIGTERM, the Balancer took backend out of
// the rotation.
func droppedAt(r lbsim.RollingStopResult, backend string) (time.Duration, bool) {
	for _, e := range r.Events {
		if e.Backend == backend && !e.Ready && e.Applied.After(r.SignalAt) {
			return e.Applied.Sub(r.SignalAt), true
		}
	}
	return 0, false
}

func drainUsages(inits []drainInit) []string {
	var out []string
	for _, in := range inits {
		switch in.init {
		case lbsim.InitLifecycled:
			drain := "--drain-delay " + in.delay.String()
			if in.quiet > 0 {
				drain += " --drain-quiet " + in.quiet.String()
			}
			out = append(out, fmt.Sprintf("`lifecycled --listen ADDR --ready http://APP/healthz --ready-period 100ms %s --grace-period 10s -- APP`", drain))
		case lbsim.InitTini:
			out = append(out, "`tini -s -- APP`")
		case lbsim.InitDumbInit:
			out = append(out, "`dumb-init APP`")
		}
	}
	return out
}

// runRollingStop runs one rolling stop; on failure the error carries the
// end of the inits' log.
func runRollingStop(ctx context.Context, in drainInit, backend string, c drainCase) (lbsim.RollingStopResult, error) {
	var log proctest.SyncBuffer
	r, err := lbsim.RollingStop{
		Init: in.init, InitPath: in.path, Backend: backend,
		DrainDelay: in.delay, DrainQuiet: in.quiet, Propagation: c.propagation, Rate: c.rate,
		Stderr: &log,
	}.Run(ctx)
	if err != nil {
		return r, fmt.Errorf("%w; last log line: %s", err, lastLine(log.String()))
	}
	return r, nil
}

func fmtKinds(byKind map[string]int64) string {
	if len(byKind) == 0 {
		return "—"
	}
	kinds := make([]string, 0, len(byKind))
	for k, n := range byKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	return strings.Join(kinds, ", ")
}
