package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// reapSection runs each wrapper as PID 1 of a fresh PID namespace whose
// child (the reap helper) makes orphans that all exit at once, and reports
// how long PID 1 takes to reap them all and how many zombies it leaves.
func reapSection(b *bench) (*table, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("needs root for unshare --pid")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, err
	}
	n := b.set.reapOrphans
	helper := b.helper("reap", "-n", fmt.Sprint(n), "-timeout", b.set.reapTimeout.String())
	nsArgv := func(argv []string) []string {
		return append([]string{unshare, "--pid", "--fork", "--mount-proc"}, argv...)
	}
	run := func(argv []string) (reapResult, error) {
		var res reapResult
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = b.env
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = time.Second
		if err := cmd.Start(); err != nil {
			return res, err
		}
		timer := time.AfterFunc(b.set.reapTimeout+30*time.Second, func() { _ = cmd.Process.Kill() })
		err := cmd.Wait()
		timer.Stop()
		line, _, _ := bytes.Cut(stdout.Bytes(), []byte("\n"))
		if jerr := json.Unmarshal(line, &res); jerr != nil {
			return res, fmt.Errorf("%s: %v; no result (%v); stderr: %s", strings.Join(argv, " "), err, jerr, lastLine(stderr.String()))
		}
		if res.Error != "" {
			return res, fmt.Errorf("reap helper: %s", res.Error)
		}
		return res, nil
	}

	// Control: the helper itself as PID 1 reaps nothing, so every orphan
	// must stay a zombie. It shows the test can see a wrapper that fails.
	b.progress("reap: control run (no init, zombies expected)")
	control, err := run(nsArgv(b.helper("reap", "-n", fmt.Sprint(n), "-timeout", "1s")))
	if err != nil {
		return nil, fmt.Errorf("control run: %w", err)
	}

	cs := b.candidates(false)
	results := map[string][]reapResult{}
	b.progress("reap: %d rounds × %d wrappers × %d orphans", b.set.reapRounds, len(cs), n)
	err = roundRobin(cs, b.set.reapRounds, func(_ int, c candidate) error {
		res, err := run(nsArgv(c.w.pid1Command(helper...)))
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		results[c.name] = append(results[c.name], res)
		return nil
	})
	if err != nil {
		return nil, err
	}

	var refMed float64
	if r := b.reference(); r != nil {
		refMed = float64(reapSummary(results[r.name]).median)
	}
	t := &table{
		title: fmt.Sprintf("Reaping: %d orphans exiting at once, wrapper as PID 1", n),
		intro: fmt.Sprintf("`unshare --pid --fork --mount-proc W -- HELPER`: the helper makes %d orphans (`setsid -f cat`, "+
			"each blocked on one pipe, reparented to PID 1), closes the pipe so they all exit together, and polls /proc "+
			"until none is left, zombies included (timeout %s). %d round(s) per wrapper, interleaved.",
			n, b.set.reapTimeout, b.set.reapRounds),
		header: []string{"wrapper", "PID 1 command line", "median time to reap all", "max", "zombies left (worst run)", "ratio vs tini (median)", "verdict (0 zombies)"},
	}
	t.rows = append(t.rows, []string{"none (control)", "`unshare … HELPER` (helper is PID 1)", reapTime(control), "—",
		fmt.Sprint(control.ZombiesLeft), "—", "— (zombies expected)"})
	for _, c := range cs {
		rs := results[c.name]
		s := reapSummary(rs)
		worst, timeouts := 0, 0
		for _, r := range rs {
			worst = max(worst, r.ZombiesLeft)
			if r.TimedOut {
				timeouts++
			}
		}
		med := fmtDur(s.median)
		if timeouts > 0 {
			med += fmt.Sprintf(" (%d timed out)", timeouts)
		}
		v := t.verdictCell(c.w, func() verdict {
			ok := worst == 0 && timeouts == 0
			return verdict{target: "zombies left after reaping = 0", measured: fmt.Sprintf("%d (%d orphans × %d runs)", worst, n, len(rs)), met: ok, known: true}
		})
		t.rows = append(t.rows, []string{c.name, "`" + strings.Replace(c.w.pid1Usage("HELPER"), c.w.path, c.name, 1) + "`",
			med, fmtDur(s.max), fmt.Sprint(worst), fmtRatio(ratio(float64(s.median), refMed)), v})
	}
	var spawn []time.Duration
	for _, rs := range results {
		for _, r := range rs {
			spawn = append(spawn, time.Duration(r.SpawnMillis*float64(time.Millisecond)))
		}
	}
	t.notes = append(t.notes, fmt.Sprintf("Making the %d orphans took %s (median over all runs); it is not part of the time to reap.",
		n, fmtDur(summarize(spawn).median)))
	t.notes = append(t.notes, "The time to reap includes the orphans' own exit (common to every row); its floor is how fast "+
		"the kernel tears down the orphans on this machine.")
	return t, nil
}

func reapSummary(rs []reapResult) summary {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = time.Duration(r.ReapMillis * float64(time.Millisecond))
	}
	return summarize(ds)
}

func reapTime(r reapResult) string {
	if r.TimedOut {
		return "never (timed out after " + fmtDur(time.Duration(r.ReapMillis*float64(time.Millisecond))) + ")"
	}
	return fmtDur(time.Duration(r.ReapMillis * float64(time.Millisecond)))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
