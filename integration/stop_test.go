package integration

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStopOnSIGTERM: SIGTERM to lifecycled (in pid1 mode from outside the
// namespace, which a Go PID 1 must handle or it dies with status 2) stops
// the child with the stop signal; lifecycled exits with the child's own
// status, rewritten by --exit-code-map; a child that ignores TERM is
// SIGKILLed after --grace-period (137), and the grace period is a ceiling,
// not a sleep.
func TestStopOnSIGTERM(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		script string // the child; it creates ./ready once its traps are set
		code   int
		min    time.Duration // lifecycled ran at least this long after SIGTERM
		max    time.Duration // and at most this long
	}{
		{
			name:   "child killed by TERM",
			args:   []string{"--grace-period", "30s"},
			script: `touch ready; exec sleep 30`,
			code:   143, max: 10 * time.Second,
		},
		{
			name:   "child exits with its own code on TERM",
			args:   []string{"--grace-period", "30s"},
			script: `trap 'exit 3' TERM; touch ready; while :; do sleep 0.05; done`,
			code:   3, max: 10 * time.Second,
		},
		{
			name:   "exit code map 143:0",
			args:   []string{"--grace-period", "30s", "--exit-code-map", "143:0"},
			script: `touch ready; exec sleep 30`,
			code:   0, max: 10 * time.Second,
		},
		{
			name:   "child ignores TERM: SIGKILL after the grace period",
			args:   []string{"--grace-period", "1s"},
			script: `trap '' TERM; touch ready; while :; do sleep 0.05; done`,
			code:   137, min: time.Second, max: 1*time.Second + 10*time.Second,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, m mode) {
				ctx := testContext(t, 30*time.Second)
				dir := t.TempDir()
				r, took := stopWhenReady(t, ctx, options{mode: m, dir: dir}, append(tc.args, "--", "sh", "-c", tc.script)...)
				assert.Equal(t, tc.code, r.code, "stderr: %s", r.stderr)
				assert.GreaterOrEqual(t, took, tc.min)
				assert.Less(t, took, tc.max)
			})
		})
	}
}

// TestStopFromInside: the child asking its supervisor to stop (kill -TERM
// $PPID; in pid1 mode that is `kill -TERM 1` from inside the namespace)
// is an ordinary stop: the child gets TERM, exit 143.
func TestStopFromInside(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 30*time.Second)
		r := runMode(t, ctx, m, "--grace-period", "30s", "--", "sh", "-c", `kill -TERM $PPID; exec sleep 30`)
		assert.Equal(t, 143, r.code, "stderr: %s", r.stderr)
		assert.Less(t, r.elapsed, 10*time.Second)
	})
}

// TestStopLingeringGroupMembers: when the child exits by itself, what is
// left of its process group gets the stop signal, then SIGKILL after the
// grace period, and lifecycled exits (with the child's code) only once the
// group is gone.
func TestStopLingeringGroupMembers(t *testing.T) {
	// The lingerer is a background job of the child: same process group.
	// The child waits until the lingerer has set its trap, then exits 7.
	lingerer := func(trap string) string {
		return fmt.Sprintf(`sh -c '%s; touch lingering; exec sleep 30' &
			while [ ! -e lingering ]; do sleep 0.01; done; exit 7`, trap)
	}
	t.Run("ignores TERM", func(t *testing.T) {
		forEachMode(t, func(t *testing.T, m mode) {
			ctx := testContext(t, 30*time.Second)
			p := start(t, options{mode: m}, "--grace-period", "1s", "--", "sh", "-c", lingerer(`trap "" TERM`))
			require.NotNil(t, p)
			r := p.wait(ctx)
			assert.Equal(t, 7, r.code, "the child's code, not the lingerer's; stderr: %s", r.stderr)
			assert.GreaterOrEqual(t, r.elapsed, time.Second, "lifecycled must wait for the lingerer (grace period)")
			assert.Less(t, r.elapsed, 10*time.Second)
			// Had lifecycled not killed and reaped it, the lingerer would
			// still run (adopted by the host's init) in the run's session.
			assert.Empty(t, sessionProcs(p.cmd.Process.Pid), "processes left behind")
		})
	})
	t.Run("exits on TERM", func(t *testing.T) {
		forEachMode(t, func(t *testing.T, m mode) {
			ctx := testContext(t, 30*time.Second)
			p := start(t, options{mode: m}, "--grace-period", "30s", "--", "sh", "-c", lingerer(`:`))
			require.NotNil(t, p)
			r := p.wait(ctx)
			assert.Equal(t, 7, r.code, "stderr: %s", r.stderr)
			assert.Less(t, r.elapsed, 10*time.Second, "the grace period is a ceiling, not a sleep")
			assert.Empty(t, sessionProcs(p.cmd.Process.Pid), "processes left behind")
		})
	})
}

// TestStopSingleChild: with --single-child the stop signal goes to the
// child alone; once the child has exited, the rest of its process group
// gets the stop signal too (contract section 3: "When the child exits, the
// rest of its process group gets the stop signal, then SIGKILL after the
// grace period") — a group mate that stops on TERM is not left to be
// SIGKILLed at the end of the grace period.
func TestStopSingleChild(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 40*time.Second)
		child, grandchild := t.TempDir(), t.TempDir()
		script := `"$@" ` + grandchild + ` & exec "$@" ` + child
		argv := append([]string{"--single-child", "--grace-period", "20s", "--", "sh", "-c", script, "sh"}, recorderCmd(t)...)
		p := start(t, options{mode: m}, argv...)
		require.NotNil(t, p)
		require.NoError(t, waitFile(ctx, filepath.Join(child, "ready")))
		require.NoError(t, waitFile(ctx, filepath.Join(grandchild, "ready")))

		r, sent := p.terminate(ctx)
		assert.Equal(t, 143, r.code, "stderr: %s", r.stderr)
		assert.Equal(t, []int{15}, readSignals(child), "the child gets the stop signal once")
		assert.Equal(t, []int{15}, readSignals(grandchild), "its group mate gets it once the child has exited")
		assert.Less(t, time.Since(sent), 10*time.Second, "no SIGKILL after the 20s grace period")
	})
}

// TestStopLeftoversNotReady: the child exits while a process that ignores
// TERM stays in its group. Nothing serves any more, so at once, long before
// the grace period ends: /readyz answers 503 with the child check failing
// and saying why, lifecycled_phase{phase="draining"} is 1, the tombstone
// says draining, and one line says the child exited and what is left is
// being stopped. exited, with the child's code, comes once SIGKILL has
// emptied the group. Before the fix /readyz said 200 ([+]child ok), the
// tombstone and the metric said running, and nothing was logged for the
// whole grace period.
func TestStopLeftoversNotReady(t *testing.T) {
	const grace = 8 * time.Second
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 60*time.Second)
		dir := t.TempDir()
		stones := filepath.Join(dir, "tombstones")
		ep, addr := newEndpoints(t)
		child := `trap "" TERM; sleep 60 & while [ ! -e go ]; do sleep 0.01; done; exit 5`
		p := start(t, options{mode: m, dir: dir}, "--listen", addr, "--tombstone-dir", stones, "--name", "app",
			"--grace-period", grace.String(), "--", "sh", "-c", child)
		require.NotNil(t, p)
		w := watchTombstone(t, filepath.Join(stones, "app.json"))
		_, err := waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
		require.NoError(t, err)

		require.NoError(t, touch(filepath.Join(dir, "go")))
		exited := time.Now()
		// A probe's time: the kubelet's default timeout is 1 s; 3 s on a
		// loaded machine is still far from the grace period.
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		body, err := waitStatus(pctx, ep.url("/readyz?verbose"), http.StatusServiceUnavailable)
		cancel()
		require.NoError(t, err, "/readyz still 200 after the child exited")
		t.Logf("%s: /readyz 503 %v after the child was told to exit", m, time.Since(exited).Round(time.Millisecond))
		assert.Contains(t, body, "[-]child failed: child exited with code 5; stopping what is left of its process group")
		metrics, err := scrape(ctx, ep)
		require.NoError(t, err)
		assert.Equal(t, 1.0, metrics.value(`lifecycled_phase{phase="draining"}`))
		assert.Equal(t, 0.0, metrics.value(`lifecycled_phase{phase="running"}`))
		require.NoError(t, poll(ctx, func() bool { return w.last().Phase == "draining" }), "tombstone")
		assert.Less(t, time.Since(exited), grace, "all of it before the grace period ended")

		res := p.wait(ctx)
		assert.Equal(t, 5, res.code, "the child's code; stderr:\n%s", res.stderr)
		assert.GreaterOrEqual(t, time.Since(exited), grace, "the lingerer ignores TERM: SIGKILL at the grace period")
		require.NoError(t, poll(ctx, func() bool { return w.last().Phase == "exited" }))
		// The watch polls: it may miss the first phases, and running
		// too, which can last a moment here (/readyz may answer 200
		// just before running is written, and the child is then told to
		// exit at once; seen: starting, draining, exited).
		phases := w.phases()
		assert.Equal(t, []string{"draining", "exited"}, phases[max(0, len(phases)-2):])
		said := logRecords(res.stderr, "child exited; stopping what is left of its process group")
		if assert.Len(t, said, 1, "stderr:\n%s", res.stderr) {
			assert.Equal(t, 5.0, said[0]["exit_code"])
			assert.Equal(t, "SIGTERM", said[0].str("stop_signal"))
			assert.Len(t, said[0]["processes"], 1, "the lingering sleep")
		}
	})
}
