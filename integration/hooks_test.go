package integration

// postStart and preStop hooks, and the stop sequence around them (contract
// sections 2 and 5).

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHooksPostStartExecSucceeds: a postStart exec hook that exits 0
// succeeds, every time. lifecycled also reaps every process it adopts with
// wait4(-1); a hook's exit status must never be taken by that loop, which is
// why the hook runs many times here.
func TestHooksPostStartExecSucceeds(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	const runs = 16
	var failed atomic.Int32
	parallel(runs, 4, func(i int) {
		dir := t.TempDir()
		out := filepath.Join(dir, "poststart")
		// The child outlives the hook: it ends a moment after the hook's
		// output is there, so that no run waits longer than needed.
		child := fmt.Sprintf(`while [ ! -s %s ]; do sleep 0.02; done; sleep 0.3`, out)
		p := start(t, options{env: quickExit()}, "--post-start", "echo ran > "+out, "--", "sh", "-c", child)
		if p == nil {
			return
		}
		res := p.wait(ctx)
		hookFailed := logRecords(res.stderr, "hook failed")
		if res.code != 0 || len(hookFailed) > 0 {
			failed.Add(1)
			t.Errorf("run %d: exit %d, hook failures %v", i, res.code, hookFailed)
		}
		assert.Len(t, logRecords(res.stderr, "hook succeeded"), 1, "run %d", i)
		b, _ := os.ReadFile(out)
		assert.Equal(t, "ran\n", string(b), "run %d: the hook did not run", i)
	})
	t.Logf("%d of %d runs saw the hook fail", failed.Load(), runs)
}

// TestHooksPostStartExecFails: a failing postStart (an exit code, or running
// past --hook-timeout) stops the child and ends the run with 125 and one
// line naming the hook.
func TestHooksPostStartExecFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, hook, why string
		extra           []string
	}{
		{"exit code", "exit 3", "exit code 3", nil},
		{"hook timeout", "sleep 30", "timed out after 300ms", []string{"--hook-timeout", "300ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 20*time.Second)
			dir := t.TempDir()
			// The child would run for 5s by itself; it must be stopped long
			// before. The hook waits for the child to be ready, so that the
			// stop signal finds its trap in place.
			hook := fmt.Sprintf("while [ ! -e %s/ready ]; do sleep 0.02; done; %s", dir, tc.hook)
			args := append(append(tc.extra, "--post-start", hook, "--"), childTrapsTermFor(dir, 5)...)
			res := runQuick(t, ctx, args...)
			assert.Equal(t, 125, res.code, "stderr:\n%s", res.stderr)
			cause := assertOneCause(t, res.stderr, "postStart")
			assert.Contains(t, cause, tc.hook)
			assert.Contains(t, cause, tc.why)
			assert.FileExists(t, filepath.Join(dir, "ready"), "the child never started")
			assert.FileExists(t, filepath.Join(dir, "term"), "the child was not stopped with SIGTERM")
			assert.Less(t, res.elapsed, 4*time.Second, "the child was not stopped")
		})
	}
}

// TestHooksPostStartInterrupted: a postStart cut short by the child's exit
// or by SIGTERM did not fail: one info line "postStart interrupted" says
// why, with no "hook failed" warning and no error record, and the run ends
// as the child or the stop says, not 125. Before, both were a warning
// "hook failed" (error "cancelled after ...: context canceled").
func TestHooksPostStartInterrupted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		child  func(dir string) []string
		term   bool // send SIGTERM once the child is ready
		code   int
		reason string
	}{
		{"child exits", func(string) []string { return []string{"sh", "-c", "sleep 0.3; exit 3"} }, false, 3, "the child exited"},
		{"SIGTERM", childTrapsTerm, true, 0, "stop requested: received SIGTERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			dir := t.TempDir()
			p := start(t, options{env: quickExit()}, append([]string{"--post-start", "sleep 30", "--"}, tc.child(dir)...)...)
			require.NotNil(t, p)
			if tc.term {
				require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
				require.NoError(t, p.signal(ctx, syscall.SIGTERM))
			}
			res := p.wait(ctx)
			assert.Equal(t, tc.code, res.code, "stderr:\n%s", res.stderr)
			assert.Less(t, res.elapsed, 20*time.Second, "the hook's 30 s were cut short")
			assert.Empty(t, logRecords(res.stderr, "hook failed"), "stderr:\n%s", res.stderr)
			assert.Empty(t, causeLines(res.stderr), "no failure of the run")
			cut := logRecords(res.stderr, "postStart interrupted")
			if assert.Len(t, cut, 1, "stderr:\n%s", res.stderr) {
				assert.Equal(t, "info", cut[0].str("level"))
				assert.Equal(t, tc.reason, cut[0].str("reason"))
				assert.Equal(t, "postStart", cut[0].str("hook"))
			}
		})
	}
}

// TestHooksPostStartHTTP: an httpGet postStart succeeds on 200 and fails the
// run on 500 (unlike the kubelet, which ignores the status).
func TestHooksPostStartHTTP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status, code int
		childRuns    float64 // seconds; for a failure, long enough to tell a stopped child from one that ended
	}{
		{http.StatusOK, 0, 0.5},
		{http.StatusInternalServerError, 125, 10},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 20*time.Second)
			dir := t.TempDir()
			hook := newFlipServer(t, tc.status)
			res := runQuick(t, ctx, append([]string{"--post-start-http", hook.URL + "/started", "--"}, childTrapsTermFor(dir, tc.childRuns)...)...)
			assert.Equal(t, tc.code, res.code, "stderr:\n%s", res.stderr)
			require.Equal(t, int32(1), hook.hits.Load(), "the hook was not called once")
			r := hook.last()
			assert.Equal(t, http.MethodGet, r.method)
			assert.Equal(t, "/started", r.path)
			assert.True(t, strings.HasPrefix(r.agent, "lifecycled/"), "User-Agent %q", r.agent)
			if tc.code != 0 {
				cause := assertOneCause(t, res.stderr, "postStart")
				assert.Contains(t, cause, hook.URL+"/started")
				assert.Contains(t, cause, "500")
				assert.Less(t, res.elapsed, 6*time.Second, "the child was not stopped (it runs 10 s)")
			}
		})
	}
}

// TestHooksPreStopExecBeforeStopSignal: preStop runs, and has finished,
// before the child gets its stop signal.
func TestHooksPreStopExecBeforeStopSignal(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	preStop := fmt.Sprintf("sleep 0.2; date +%%s%%N > %s/prestop", dir)
	p := startTrapping(t, ctx, dir, "--pre-stop", preStop)
	res, _ := p.terminate(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)

	hookDone, term := preStopAndTerm(t, ctx, dir)
	t.Logf("preStop finished %s before the stop signal was handled", term.Sub(hookDone))
	assert.True(t, hookDone.Before(term), "the stop signal came before preStop finished")
}

// TestHooksPreStopHTTP: an httpGet preStop is called before the stop signal.
func TestHooksPreStopHTTP(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	hook := newFlipServer(t, http.StatusOK)
	p := startTrapping(t, ctx, dir, "--pre-stop-http", hook.URL+"/prestop")
	assert.Zero(t, hook.hits.Load(), "preStop called before any stop")
	res, _ := p.terminate(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)

	require.Equal(t, int32(1), hook.hits.Load())
	r := hook.last()
	assert.Equal(t, "/prestop", r.path)
	assert.Equal(t, http.MethodGet, r.method)
	term, err := readStamp(ctx, filepath.Join(dir, "term"))
	require.NoError(t, err)
	assert.True(t, r.at.Before(term), "the stop signal came before the preStop call")
}

// TestHooksPreStopFailureContinues: a failing preStop (exit code, HTTP 500,
// unreachable URL) is logged and the stop goes on, as in Kubernetes.
func TestHooksPreStopFailureContinues(t *testing.T) {
	t.Parallel()
	failing := newFlipServer(t, http.StatusInternalServerError)
	for _, tc := range []struct {
		name  string
		args  []string
		error string
	}{
		{"exit code", []string{"--pre-stop", "echo about to fail; exit 7"}, "exit code 7"},
		{"http 500", []string{"--pre-stop-http", failing.URL + "/prestop"}, "500"},
		{"http refused", []string{"--pre-stop-http", fmt.Sprintf("http://127.0.0.1:%d/", loopbackPort(t))}, "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 20*time.Second)
			dir := t.TempDir()
			p := startTrapping(t, ctx, dir, tc.args...)
			res, _ := p.terminate(ctx)
			assert.Equal(t, 0, res.code, "the stop did not go on; stderr:\n%s", res.stderr)
			assert.FileExists(t, filepath.Join(dir, "term"), "the child got no SIGTERM")
			failures := logRecords(res.stderr, "hook failed")
			require.Len(t, failures, 1, "stderr:\n%s", res.stderr)
			assert.Equal(t, "preStop", failures[0].str("hook"))
			assert.Contains(t, failures[0].str("error"), tc.error)
			assert.Empty(t, causeLines(res.stderr), "a preStop failure is no failure of the run")
		})
	}
}

// TestHooksTimeout: a hook that runs over --hook-timeout is killed, with
// whatever it started, and counts as failed.
func TestHooksTimeout(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	hookPid := filepath.Join(dir, "hookpid")
	preStop := fmt.Sprintf("echo $$ > %s.tmp && mv %[1]s.tmp %[1]s; sleep 30", hookPid)
	p := startTrapping(t, ctx, dir, "--hook-timeout", "300ms", "--pre-stop", preStop)
	res, sent := p.terminate(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	assert.Less(t, time.Since(sent), 15*time.Second, "the hung preStop (30 s) held the stop")

	failures := logRecords(res.stderr, "hook failed")
	require.Len(t, failures, 1, "stderr:\n%s", res.stderr)
	assert.Equal(t, "preStop", failures[0].str("hook"))
	assert.Contains(t, failures[0].str("error"), "timed out after 300ms")

	pgid, err := readPid(ctx, hookPid)
	require.NoError(t, err)
	for _, s := range allProcs() {
		assert.NotEqual(t, pgid, s.pgrp, "process %d (%s) of the killed hook is still there", s.pid, s.comm)
	}
}

// TestHooksCommandForms: a JSON array is exec form (no shell between), any
// other text runs with /bin/sh -c.
func TestHooksCommandForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, hook string
		want       func(t *testing.T, out string)
	}{
		{"exec form", `["/bin/sh","-c","echo $0 > %s","x"]`, func(t *testing.T, out string) {
			assert.Equal(t, "x\n", out, "exec form: the arguments were not passed as given")
		}},
		{"exec form without shell", `["/bin/cp","/proc/self/cmdline","%s"]`, func(t *testing.T, out string) {
			assert.True(t, strings.HasPrefix(out, "/bin/cp\x00/proc/self/cmdline\x00"), "exec form: argv was %q", out)
		}},
		{"shell form", `echo "$0" > %s`, func(t *testing.T, out string) {
			assert.Contains(t, out, "sh", "shell form: not run by /bin/sh -c")
		}},
		{"shell form that looks like an array", `[ -d / ] && echo test > %s`, func(t *testing.T, out string) {
			assert.Equal(t, "test\n", out)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 20*time.Second)
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			p := startTrapping(t, ctx, dir, "--pre-stop", fmt.Sprintf(tc.hook, out))
			res, _ := p.terminate(ctx)
			assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
			b, err := os.ReadFile(out)
			require.NoError(t, err, "the hook did not run; stderr:\n%s", res.stderr)
			tc.want(t, string(b))
		})
	}
}

// TestHooksLargeOutput: a hook writing megabytes neither hangs nor fails.
func TestHooksLargeOutput(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	preStop := fmt.Sprintf("head -c 16000000 /dev/zero | tr '\\0' x; echo; echo err >&2; : > %s/hookdone", dir)
	p := startTrapping(t, ctx, dir, "--pre-stop", preStop)
	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	res := p.wait(testContext(t, 15*time.Second))
	assert.Equal(t, 0, res.code, "stderr:\n%.2000s", res.stderr)
	assert.FileExists(t, filepath.Join(dir, "hookdone"), "the hook did not run to its end")
	assert.Empty(t, logRecords(res.stderr, "hook failed"))
	assert.NotContains(t, res.stdout, "xxxxxxxx", "the hook's output went to lifecycled's stdout")
	assert.Less(t, len(res.stderr), 64<<10, "the hook's output was copied into the log")
}

// TestHooksSecondSignalSkipsDrain: a second SIGTERM cuts the drain delay
// short.
func TestHooksSecondSignalSkipsDrain(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	ep, p := startListening(t, append([]string{"--drain-delay", "10s", "--"}, childTrapsTerm(dir)...)...)
	require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
	_, err := waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
	require.NoError(t, err)

	first := time.Now()
	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	_, err = waitStatus(ctx, ep.url("/readyz"), http.StatusServiceUnavailable)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	assert.False(t, p.hasExited(), "the drain delay was not waited")
	second := time.Now()
	res, _ := p.terminate(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	t.Logf("exit %s after the second SIGTERM, %s after the first", time.Since(second), time.Since(first))
	assert.Less(t, time.Since(second), 5*time.Second, "the second SIGTERM did not skip the 10 s drain delay")
	assert.FileExists(t, filepath.Join(dir, "term"), "the child was not stopped with SIGTERM")
}

// TestHooksChildExitsDuringDrain: a child that exits during the drain delay
// ends the stop sequence: no 10s wait, no preStop, its own exit code.
func TestHooksChildExitsDuringDrain(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	// The child ignores SIGTERM and ends by itself 1s after it started.
	child := []string{"sh", "-c", fmt.Sprintf(`trap '' TERM; : > %s/ready; sleep 1; exit 7`, dir)}
	p := start(t, options{env: quickExit()}, append([]string{"--drain-delay", "10s",
		"--pre-stop", "touch " + filepath.Join(dir, "prestop"), "--"}, child...)...)
	require.NotNil(t, p)
	require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
	res, _ := p.terminate(ctx)
	assert.Equal(t, 7, res.code, "stderr:\n%s", res.stderr)
	assert.Less(t, res.elapsed, 4*time.Second, "the drain delay went on after the child exited")
	assert.NoFileExists(t, filepath.Join(dir, "prestop"), "preStop ran for a child already gone")
}

// TestHooksDrainConnections: the stop waits while a client keeps a
// connection to the child's port open, goes on once it closes, and gives up
// at --drain-timeout.
func TestHooksDrainConnections(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("socat"); err != nil {
		t.Fatal("socat not installed: .ci/test.sh installs it (apt-get install socat)")
	}
	for _, tc := range []struct {
		name      string
		timeout   time.Duration
		closeConn bool
	}{
		{"closed by the client", 20 * time.Second, true},
		{"capped by drain-timeout", time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			port := loopbackPort(t)
			p := start(t, options{env: quickExit()}, "--drain-connections", fmt.Sprint(port), "--drain-timeout", tc.timeout.String(),
				"--", "socat", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr", port), "EXEC:cat")
			require.NotNil(t, p)
			var conn net.Conn
			require.NoError(t, poll(ctx, func() bool {
				var err error
				conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
				return err == nil
			}))
			defer conn.Close()
			// An echo proves the connection is established at socat's end.
			_, err := conn.Write([]byte("ping\n"))
			require.NoError(t, err)
			buf := make([]byte, 5)
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
			_, err = conn.Read(buf)
			require.NoError(t, err)

			sent := time.Now()
			require.NoError(t, p.signal(ctx, syscall.SIGTERM))
			if tc.closeConn {
				time.Sleep(1200 * time.Millisecond)
				assert.False(t, p.hasExited(), "the stop did not wait for the open connection")
				closed := time.Now()
				require.NoError(t, conn.Close())
				res := p.wait(ctx)
				assert.Less(t, time.Since(closed), 10*time.Second, "the stop did not go on once the connection closed (--drain-timeout 20s); stderr:\n%s", res.stderr)
				return
			}
			res := p.wait(ctx)
			elapsed := time.Since(sent)
			assert.GreaterOrEqual(t, elapsed, 900*time.Millisecond, "stopped before --drain-timeout with a connection open; stderr:\n%s", res.stderr)
			assert.Less(t, elapsed, 4*time.Second, "--drain-timeout 1s was not kept")
			assert.NotEmpty(t, logRecords(res.stderr, "drain timeout: connections still open, stopping anyway"))
		})
	}
}

// TestHooksBudgetWarning: a stop sequence that cannot fit in the pod's
// terminationGracePeriodSeconds is flagged at start.
func TestHooksBudgetWarning(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	res := runQuick(t, ctx, "--termination-grace-period", "5s", "--drain-delay", "10s", "--", "true")
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	warnings := logRecords(res.stderr, "stop sequence does not fit --termination-grace-period")
	require.Len(t, warnings, 1, "stderr:\n%s", res.stderr)
	assert.Equal(t, "warn", warnings[0].str("level"))
	assert.Contains(t, warnings[0].str("error"), "drain delay")

	res = runQuick(t, ctx, "--termination-grace-period", "30s", "--drain-delay", "5s", "--", "true")
	assert.Equal(t, 0, res.code)
	assert.Empty(t, logRecords(res.stderr, "stop sequence does not fit --termination-grace-period"), "a budget that fits")
}
