package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/proctest"
)

// TestSettingsSignalMapChoosesStopSignal: TERM and INT start the stop
// sequence, so `--signal-map TERM:QUIT` (nginx's graceful stop) makes QUIT
// the signal that sequence sends, however the map is given; explain says
// so. The recorder does not exit on QUIT: it is SIGKILLed after the grace
// period, having received QUIT and nothing else.
func TestSettingsSignalMapChoosesStopSignal(t *testing.T) {
	for _, via := range []string{"flag", "env", "file", "int"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			dir := t.TempDir()
			args := []string{"--grace-period", "300ms"}
			var env []string
			stop := syscall.SIGTERM
			switch via {
			case "flag":
				args = append(args, "--signal-map", "TERM:QUIT")
			case "env":
				env = []string{"LIFECYCLED_SIGNAL_MAP=WINCH:USR1,TERM:QUIT"}
			case "file":
				file := filepath.Join(dir, "c.yaml")
				require.NoError(t, os.WriteFile(file, []byte("signalMap: [TERM:QUIT]\n"), 0o644))
				args = append(args, "--config", file)
			case "int":
				args = append(args, "--signal-map", "INT:QUIT", "--stop-signal", "QUIT")
				stop = syscall.SIGINT
			}
			out, err := exec.Command(lifecycledBin(t), append(append([]string{"explain"}, args...), "--", "nginx")...).CombinedOutput()
			if via != "env" {
				require.NoError(t, err, "%s", out)
				assert.Contains(t, string(out), "SIGQUIT to the child", "explain shows what the stop sequence sends")
			}

			p := start(t, options{env: env}, append(append(args, "--"), recorder(t, dir)...)...)
			require.NotNil(t, p)
			require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
			require.NoError(t, p.signal(ctx, stop))
			r := p.wait(ctx)
			assert.Equal(t, 137, r.code, "stderr: %s", r.stderr)
			assert.Equal(t, []int{int(syscall.SIGQUIT)}, readSignals(dir))
		})
	}
}

// TestSettingsSignalsThatCannotWork: a map from a signal lifecycled never
// receives or forwards, a stop signal that cannot end a process, and a map
// of TERM that disagrees with --stop-signal are usage errors (exit 2, one
// line naming them), never silently ignored.
func TestSettingsSignalsThatCannotWork(t *testing.T) {
	cases := []struct {
		args  []string
		cause string
	}{
		{[]string{"--signal-map", "KILL:TERM"}, "KILL:TERM"},
		{[]string{"--signal-map", "STOP:USR1"}, "STOP:USR1"},
		{[]string{"--signal-map", "CHLD:USR1"}, "CHLD:USR1"},
		{[]string{"--signal-map", "TERM:CHLD"}, "TERM:CHLD"},
		{[]string{"--signal-map", "TERM:STOP"}, "TERM:STOP"},
		{[]string{"--stop-signal", "STOP"}, "--stop-signal STOP"},
		{[]string{"--stop-signal", "CONT"}, "--stop-signal CONT"},
		{[]string{"--stop-signal", "TSTP"}, "--stop-signal TSTP"},
		{[]string{"--signal-map", "TERM:QUIT", "--stop-signal", "HUP"}, "--signal-map TERM:QUIT and --stop-signal HUP disagree"},
		{[]string{"--signal-map", "TERM:QUIT", "--signal-map", "INT:USR2"}, "disagree"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 20*time.Second)
			dir := t.TempDir()
			p := start(t, options{dir: dir}, append(tc.args, "--", "touch", "started")...)
			require.NotNil(t, p)
			r := p.wait(ctx)
			assert.Equal(t, 2, r.code, "stderr: %s", r.stderr)
			assertOneCause(t, r.stderr, tc.cause)
			assert.NoFileExists(t, filepath.Join(dir, "started"))
		})
	}
}

// TestSettingsZeroMeansZero: a zero duration means no wait, never "the
// default": --grace-period 0 sends SIGKILL right after the stop signal
// (it waited 10 s), and --drain-timeout 0 does not wait for connections
// (it waited 30 s). What explain prints is what happens.
func TestSettingsZeroMeansZero(t *testing.T) {
	ignoreTerm := `trap '' TERM; : > ready; while :; do sleep 0.05; done`
	t.Run("grace period", func(t *testing.T) {
		ctx := testContext(t, 30*time.Second)
		out, err := exec.Command(lifecycledBin(t), "explain", "--grace-period", "0", "--", "app").Output()
		require.NoError(t, err)
		assert.Contains(t, string(out), "SIGKILL at 0s")

		dir := t.TempDir()
		r, took := stopWhenReady(t, ctx, options{dir: dir}, "--grace-period", "0", "--", "sh", "-c", ignoreTerm)
		assert.Equal(t, 137, r.code, "stderr: %s", r.stderr)
		assert.Less(t, took, 3*time.Second, "SIGKILL right after the stop signal, not after a default 10s")
		t.Logf("FIGURE --grace-period 0: SIGTERM to exit 137 in %s", took.Round(time.Millisecond))
	})

	// The test holds one established connection to a local port for the
	// whole run: --drain-connections waits for it up to --drain-timeout.
	held, _ := proctest.HeldConn(t)
	port := strconv.Itoa(held)

	for _, tc := range []struct {
		timeout        string
		atLeast, below time.Duration
		explain        string
	}{
		{"0", 0, 1500 * time.Millisecond, "connections <=0s"},
		{"2s", 2 * time.Second, 10 * time.Second, "connections <=2s"}, // the connection is counted
	} {
		t.Run("drain timeout "+tc.timeout, func(t *testing.T) {
			ctx := testContext(t, 60*time.Second)
			args := []string{"--drain-connections", port, "--drain-timeout", tc.timeout}
			out, err := exec.Command(lifecycledBin(t), append(append([]string{"explain"}, args...), "--", "app")...).Output()
			require.NoError(t, err)
			assert.Contains(t, string(out), tc.explain)

			dir := t.TempDir()
			r, took := stopWhenReady(t, ctx, options{dir: dir}, append(args, "--", "sh", "-c", childUntilTerm)...)
			assert.Equal(t, 3, r.code, "stderr: %s", r.stderr)
			assert.GreaterOrEqual(t, took, tc.atLeast)
			assert.Less(t, took, tc.below)
			t.Logf("FIGURE --drain-timeout %s with a connection open: SIGTERM to exit in %s", tc.timeout, took.Round(time.Millisecond))
		})
	}
}

// TestSettingsEnvNotPassedOn: lifecycled's own variables are read, then
// kept from every process it starts (the child, hooks): a nested
// lifecycled does not take the outer one's LIFECYCLED_LISTEN ("address
// already in use") and the app's environment is otherwise untouched.
func TestSettingsEnvNotPassedOn(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	addr := listenAddr(t)
	p := start(t, options{dir: dir, env: []string{"LIFECYCLED_LISTEN=" + addr, "LIFECYCLED_NAME=outer", "APP_SETTING=kept"}},
		"--post-start", "env > hook.env",
		"--", lifecycledBin(t), "--", "sh", "-c", "env > child.env; test -s hook.env || sleep 1")
	require.NotNil(t, p)
	r := p.wait(ctx)
	assert.Equal(t, 0, r.code, "the nested lifecycled started: %s", r.stderr)
	for _, f := range []string{"child.env", "hook.env"} {
		env, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.NotContains(t, string(env), "LIFECYCLED_", f)
		assert.Contains(t, string(env), "APP_SETTING=kept", f)
	}
}

// TestSettingsBadNamesAndCommands: an empty COMMAND is a usage error naming
// it, a COMMAND that is a directory fails to start with 126 naming it (not
// an error about --name, which was never given), and --name takes no
// control character or path separator.
func TestSettingsBadNamesAndCommands(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		cause string
	}{
		{"empty command", []string{"--", ""}, 2, `empty COMMAND ("")`},
		{"root directory", []string{"--", "/"}, 126, "/"},
		{"newline in name", []string{"--name", "a\nb", "--", "true"}, 2, `--name "a\nb": must not hold control characters`},
		{"tab in name", []string{"--name", "a\tb", "--", "true"}, 2, "control characters"},
		{"slash in name", []string{"--name", "../x", "--", "true"}, 2, "without '/'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t, 20*time.Second)
			r := run(t, ctx, tc.args...)
			assert.Equal(t, tc.code, r.code, "stderr: %s", r.stderr)
			line := assertOneCause(t, r.stderr, tc.cause)
			if tc.args[0] == "--" {
				assert.NotContains(t, line, "--name")
			}
		})
	}
}

// TestSettingsChildStartedLineCapped: a command line of 20,000 arguments
// is logged as one short line: the first arguments and how many there are.
func TestSettingsChildStartedLineCapped(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	args := []string{"--", "sh", "-c", "exit 0", "sh"}
	for i := 0; i < 20000; i++ {
		args = append(args, strings.Repeat("x", 20))
	}
	r := run(t, ctx, args...)
	require.Equal(t, 0, r.code, "stderr: %.2000s", r.stderr)
	recs := logRecords(r.stderr, "child started")
	require.Len(t, recs, 1, "stderr: %.2000s", r.stderr)
	for _, l := range lines(r.stderr) {
		if strings.Contains(l, "child started") {
			assert.Less(t, len(l), 4096, "the line is short")
			assert.Contains(t, l, `"argc":20004`)
			assert.Contains(t, l, "more)")
		}
	}
}

// TestSettingsHelp: help, -h, --help print the usage on stdout and exit 0
// (help was run as a command: 127); wait and probe have help in the same
// style, read LIFECYCLED_* like run, and a misspelled flag names the
// closest one.
func TestSettingsHelp(t *testing.T) {
	bin := lifecycledBin(t)
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"-help"}, {"run", "--help"}, {"help", "wait"}, {"wait", "--help"}, {"probe", "-h"}, {"help", "probe"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, args...)
			cmd.Env = testEnv(nil)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "stderr: %s", stderr.String())
			assert.Empty(t, stderr.String())
			assert.Contains(t, string(out), "Usage:\n  lifecycled ")
			assert.Regexp(t, `(?m)^  --timeout DURATION\n        .*\[LIFECYCLED_|^  --grace-period DURATION\n        .*\[LIFECYCLED_GRACE_PERIOD, gracePeriod\]`, string(out))
		})
	}

	run := func(env []string, args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = testEnv(env)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil {
			require.ErrorAs(t, err, &ee)
			return ee.ExitCode(), string(out)
		}
		return 0, string(out)
	}
	t.Run("wait reads the environment", func(t *testing.T) {
		code, out := run([]string{"LIFECYCLED_WAIT_TIMEOUT=300ms", "LIFECYCLED_LOG_LEVEL=error"}, "wait", "tcp://127.0.0.1:1")
		assert.Equal(t, 124, code, out)
		code, out = run([]string{"LIFECYCLED_WAIT_INTERVAL=soon"}, "wait", "tcp://127.0.0.1:1")
		assert.Equal(t, 2, code, out)
		assert.Contains(t, out, `LIFECYCLED_WAIT_INTERVAL="soon"`)
	})
	t.Run("probe reads the environment", func(t *testing.T) {
		code, out := run([]string{"LIFECYCLED_READY_TIMEOUT=x"}, "probe", "tcp://127.0.0.1:1")
		assert.Equal(t, 2, code, out)
		assert.Contains(t, out, `LIFECYCLED_READY_TIMEOUT="x"`)
	})
	t.Run("did you mean", func(t *testing.T) {
		code, out := run(nil, "--drain-dealy", "5s", "--", "true")
		assert.Equal(t, 2, code, out)
		assert.Contains(t, out, "unknown flag --drain-dealy (did you mean --drain-delay?)")
		code, out = run(nil, "wait", "--timout", "1s", "tcp://127.0.0.1:1")
		assert.Equal(t, 2, code, out)
		assert.Contains(t, out, "did you mean --timeout?")
	})
}
