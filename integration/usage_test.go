package integration

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUsageErrors: a bad invocation exits 2 with exactly one line on
// stderr naming the cause, and starts nothing.
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name  string
		env   []string
		args  []string // before "-- sh -c 'touch started'"
		cause []string // words the line must hold
		noCmd bool     // no command at all
	}{
		{name: "unknown flag", args: []string{"--bogus"}, cause: []string{"bogus"}},
		{name: "bad duration", args: []string{"--grace-period", "abc"}, cause: []string{"grace-period", "abc"}},
		{name: "negative duration", args: []string{"--grace-period=-1s"}, cause: []string{"grace-period", "-1s"}},
		{name: "no command", noCmd: true, cause: []string{"COMMAND"}},
		{name: "signal map without TO", args: []string{"--signal-map", "USR1"}, cause: []string{"signal-map", "USR1"}},
		{name: "signal map bad signal", args: []string{"--signal-map", "USR1:NOPE"}, cause: []string{"signal-map", "NOPE"}},
		{name: "bad stop signal", args: []string{"--stop-signal", "NOPE"}, cause: []string{"stop-signal", "NOPE"}},
		{name: "stop signal out of range", args: []string{"--stop-signal", "65"}, cause: []string{"stop-signal", "65"}},
		{name: "bad exit code map", args: []string{"--exit-code-map", "300:0"}, cause: []string{"exit-code-map", "300"}},
		{name: "bad env duration", env: []string{"LIFECYCLED_GRACE_PERIOD=abc"}, cause: []string{"LIFECYCLED_GRACE_PERIOD", "abc"}},
		{name: "bad env signal map", env: []string{"LIFECYCLED_SIGNAL_MAP=USR1:USR2,HUP"}, cause: []string{"HUP"}},
		// Issue 17, point 10: accepted without a word before.
		{name: "unknown env variable", env: []string{"LIFECYCLED_DRAIN_DEALY=5s"}, cause: []string{"LIFECYCLED_DRAIN_DEALY", "did you mean LIFECYCLED_DRAIN_DELAY?"}},
		{name: "unknown env variable, explain", args: []string{"explain"}, env: []string{"LIFECYCLED_DRAIN_DEALY=5s"},
			cause: []string{"explain: unknown environment variable LIFECYCLED_DRAIN_DEALY", "did you mean LIFECYCLED_DRAIN_DELAY?"}},
		{name: "drain quiet over its ceiling", args: []string{"--drain-quiet", "2s", "--drain-delay", "1s", "--drain-connections", "80"},
			cause: []string{"--drain-quiet 2s", "--drain-delay 1s"}},
		{name: "hex port", args: []string{"--drain-connections", "0x10"}, cause: []string{"--drain-connections", "0x10", "decimal"}},
		{name: "hex port from env", env: []string{"LIFECYCLED_DRAIN_CONNECTIONS=0x10"}, cause: []string{"LIFECYCLED_DRAIN_CONNECTIONS", "0x10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			dir := t.TempDir()
			args := tc.args
			if tc.noCmd {
				args = append(args, "--")
			} else {
				args = append(args, "--", "sh", "-c", "touch started")
			}
			p := start(t, options{env: tc.env, dir: dir}, args...)
			require.NotNil(t, p)
			r := p.wait(ctx)
			assert.Equal(t, 2, r.code)
			if assert.Len(t, lines(r.stderr), 1, "exactly one line on stderr") {
				for _, w := range tc.cause {
					assert.Contains(t, r.stderr, w, "the line names the cause")
				}
			}
			assert.Empty(t, r.stdout)
			assert.NoFileExists(t, filepath.Join(dir, "started"), "nothing may be started")
		})
	}
}

// TestStartErrors: COMMAND that cannot be executed gives 126, one that does
// not exist 127, each with one line on stderr naming the path, as a plain
// process and as PID 1.
func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	require.NoError(t, os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644))
	badInterp := filepath.Join(dir, "bad-interpreter")
	require.NoError(t, os.WriteFile(badInterp, []byte("#!/nonexistent/interpreter\n"), 0o755))
	cases := []struct {
		name string
		cmd  string
		code int
	}{
		{"not executable", notExec, 126},
		{"a directory", dir, 126},
		{"missing command", "no-such-command-lifecycled-test", 127},
		{"missing absolute path", "/nonexistent/lifecycled-test/app", 127},
		{"missing interpreter", badInterp, 127},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, m mode) {
				ctx := testContext(t, 30*time.Second)
				r := runMode(t, ctx, m, "--", tc.cmd, "arg")
				assert.Equal(t, tc.code, r.code, "stderr: %s", r.stderr)
				// Besides lifecycled's own JSON log records, one line.
				if cause := causeLines(r.stderr); assert.Len(t, cause, 1, "stderr: %s", r.stderr) {
					assert.Contains(t, cause[0], tc.cmd, "the line names the command")
				}
				assert.Empty(t, r.stdout)
			})
		})
	}
}

// TestFlagsFromEnvironment: every run flag can come from LIFECYCLED_<FLAG>
// (repeatable flags comma-separated), and a flag beats the environment.
func TestFlagsFromEnvironment(t *testing.T) {
	ctx := testContext(t, time.Minute)
	exit := func(env []string, args ...string) result {
		t.Helper()
		p := start(t, options{env: env}, append(args, "--", "sh", "-c", "exit $CODE")...)
		require.NotNil(t, p)
		return p.wait(ctx)
	}
	t.Run("exit code map from env", func(t *testing.T) {
		assert.Equal(t, 4, exit([]string{"CODE=3", "LIFECYCLED_EXIT_CODE_MAP=3:4"}).code)
	})
	t.Run("repeatable flag comma-separated", func(t *testing.T) {
		env := []string{"LIFECYCLED_EXIT_CODE_MAP=3:4, 5:6"}
		assert.Equal(t, 4, exit(append(env, "CODE=3")).code)
		assert.Equal(t, 6, exit(append(env, "CODE=5")).code)
	})
	t.Run("flag beats env", func(t *testing.T) {
		assert.Equal(t, 5, exit([]string{"CODE=3", "LIFECYCLED_EXIT_CODE_MAP=3:4"}, "--exit-code-map", "3:5").code)
	})
	t.Run("stop signal and signal map from env", func(t *testing.T) {
		dir := t.TempDir()
		p := start(t, options{env: []string{"LIFECYCLED_STOP_SIGNAL=USR2", "LIFECYCLED_SIGNAL_MAP=HUP:WINCH", "LIFECYCLED_GRACE_PERIOD=200ms"}},
			append([]string{"--"}, recorder(t, dir)...)...)
		require.NotNil(t, p)
		require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
		require.NoError(t, p.signal(ctx, syscall.SIGHUP))
		_, err := waitSignals(ctx, dir, 1)
		require.NoError(t, err)
		require.NoError(t, p.signal(ctx, syscall.SIGTERM))
		r := p.wait(ctx)
		// The recorder ignores USR2: SIGKILL after the 200ms grace period.
		assert.Equal(t, 137, r.code, "stderr: %s", r.stderr)
		assert.Equal(t, []int{int(syscall.SIGWINCH), int(syscall.SIGUSR2)}, readSignals(dir))
		assert.Less(t, r.elapsed, 10*time.Second, "LIFECYCLED_GRACE_PERIOD=200ms, not the default 10s")
	})
	t.Run("grace period flag beats env", func(t *testing.T) {
		dir := t.TempDir()
		p := start(t, options{env: []string{"LIFECYCLED_GRACE_PERIOD=60s"}, dir: dir},
			"--grace-period", "200ms", "--", "sh", "-c", `trap '' TERM; touch ready; while :; do sleep 0.05; done`)
		require.NotNil(t, p)
		require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
		require.NoError(t, p.signal(ctx, syscall.SIGTERM))
		r := p.wait(ctx)
		assert.Equal(t, 137, r.code, "stderr: %s", r.stderr)
		assert.Less(t, r.elapsed, 20*time.Second)
	})
	t.Run("single child from env", func(t *testing.T) {
		// With LIFECYCLED_SINGLE_CHILD=true a USR1 reaches the child only;
		// the background grandchild never records it.
		child, grandchild := t.TempDir(), t.TempDir()
		script := `"$@" ` + grandchild + ` & exec "$@" ` + child
		p := start(t, options{env: []string{"LIFECYCLED_SINGLE_CHILD=true"}},
			append([]string{"--", "sh", "-c", script, "sh"}, recorderCmd(t)...)...)
		require.NotNil(t, p)
		require.NoError(t, waitFile(ctx, filepath.Join(child, "ready")))
		gpid, err := readPid(ctx, filepath.Join(grandchild, "ready"))
		require.NoError(t, err)
		require.NoError(t, p.signal(ctx, syscall.SIGUSR1))
		_, err = waitSignals(ctx, child, 1)
		require.NoError(t, err)
		require.NoError(t, syscall.Kill(gpid, syscall.SIGUSR2)) // marker, see TestSignalsGroupVsSingleChild
		got, err := waitSignals(ctx, grandchild, 1)
		require.NoError(t, err)
		assert.Equal(t, []int{int(syscall.SIGUSR2)}, got)
	})
}
