package integration

import (
	"fmt"
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
