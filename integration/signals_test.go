package integration

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/supervisor"
)

// startRecorder starts `lifecycled args... -- sigrecorder DIR` and waits
// until the recorder has its handlers in place. It returns the run and DIR.
func startRecorder(t *testing.T, ctx context.Context, m mode, args ...string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	p := start(t, options{mode: m}, slices.Concat(args, []string{"--"}, recorder(t, dir))...)
	require.NotNil(t, p)
	require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
	return p, dir
}

// TestSignalsForwardedExactlyOnce: every signal of ForwardedSignals except
// TERM and INT (which start the stop sequence), real-time ones included,
// reaches the child exactly once, and nothing else (no SIGURG from
// lifecycled's runtime, no SIGCHLD) does.
func TestSignalsForwardedExactlyOnce(t *testing.T) {
	var sigs []syscall.Signal
	for _, s := range supervisor.ForwardedSignals() {
		if s != syscall.SIGTERM && s != syscall.SIGINT {
			sigs = append(sigs, s)
		}
	}
	require.Greater(t, len(sigs), 40, "ForwardedSignals should hold the real-time signals too")

	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, time.Minute)
		p, dir := startRecorder(t, ctx, m)
		var want []int
		for _, s := range sigs {
			require.NoError(t, p.signal(ctx, s))
			want = append(want, int(s))
			got, err := waitSignals(ctx, dir, len(want))
			require.NoError(t, err, "after sending %s", supervisor.SignalName(s))
			require.Equal(t, want, got, "after sending %s", supervisor.SignalName(s))
		}
		// A duplicate or stray signal would arrive within moments; the
		// TERM that ends the run is recorded after anything still queued.
		require.NoError(t, p.signal(ctx, syscall.SIGTERM))
		r := p.wait(ctx)
		assert.Equal(t, 128+int(syscall.SIGTERM), r.code, "stderr: %s", r.stderr)
		assert.Equal(t, append(want, int(syscall.SIGTERM)), readSignals(dir), "every signal exactly once, nothing else")
	})
}

// TestSignalsStopSignalOnce: TERM and INT are not forwarded as such: they
// start the stop sequence, whose stop signal (TERM by default, or
// --stop-signal) reaches the child once; lifecycled exits with the child's
// status.
func TestSignalsStopSignalOnce(t *testing.T) {
	cases := []struct {
		name string
		args []string
		send syscall.Signal
		want []int // recorded by the child
		code int
	}{
		{"TERM", nil, syscall.SIGTERM, []int{15}, 143},
		// INT starts the stop sequence too: the child gets the stop signal.
		{"INT", nil, syscall.SIGINT, []int{15}, 143},
		{"INT with --stop-signal INT", []string{"--stop-signal", "INT"}, syscall.SIGINT, []int{2}, 130},
		// The recorder does not exit on USR2: SIGKILL after the grace period.
		{"TERM with --stop-signal USR2", []string{"--stop-signal", "SIGUSR2", "--grace-period", "300ms"}, syscall.SIGTERM, []int{12}, 137},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, m mode) {
				ctx := testContext(t, 30*time.Second)
				p, dir := startRecorder(t, ctx, m, tc.args...)
				require.NoError(t, p.signal(ctx, tc.send))
				r := p.wait(ctx)
				assert.Equal(t, tc.code, r.code, "stderr: %s", r.stderr)
				assert.Equal(t, tc.want, readSignals(dir))
			})
		})
	}
}

// TestSignalsMap: --signal-map rewrites forwarded signals (by name, number
// and real-time offset); unmapped signals pass unchanged.
func TestSignalsMap(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 30*time.Second)
		p, dir := startRecorder(t, ctx, m,
			"--signal-map", "USR1:USR2", "--signal-map", "1:SIGRTMIN+3", "--signal-map", "sigwinch:rtmax")
		send := []syscall.Signal{syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGWINCH, syscall.SIGUSR2, syscall.SIGQUIT}
		want := []int{12, 37, 64, 12, 3}
		for i, s := range send {
			require.NoError(t, p.signal(ctx, s))
			got, err := waitSignals(ctx, dir, i+1)
			require.NoError(t, err)
			require.Equal(t, want[:i+1], got, "after sending %s", supervisor.SignalName(s))
		}
		require.NoError(t, p.signal(ctx, syscall.SIGTERM))
		r := p.wait(ctx)
		assert.Equal(t, 143, r.code, "stderr: %s", r.stderr)
		assert.Equal(t, append(want, 15), readSignals(dir))
	})
}

// TestSignalsGroupVsSingleChild: by default a forwarded signal reaches the
// child's whole process group (a background grandchild too); with
// --single-child only the child gets it.
func TestSignalsGroupVsSingleChild(t *testing.T) {
	for _, single := range []bool{false, true} {
		name := "group"
		var args []string
		if single {
			name, args = "single-child", []string{"--single-child"}
		}
		args = append(args, "--grace-period", "20s")
		t.Run(name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, m mode) {
				ctx := testContext(t, 30*time.Second)
				child, grandchild := t.TempDir(), t.TempDir()
				// The grandchild is a background job of a non-interactive
				// shell: same process group as the child.
				script := `"$@" ` + grandchild + ` & exec "$@" ` + child
				argv := append([]string{"--", "sh", "-c", script, "sh"}, recorderCmd(t)...)
				p := start(t, options{mode: m}, append(args, argv...)...)
				require.NotNil(t, p)
				require.NoError(t, waitFile(ctx, filepath.Join(child, "ready")))
				gpid, err := readPid(ctx, filepath.Join(grandchild, "ready"))
				require.NoError(t, err)
				gpid, err = p.hostPid(ctx, gpid)
				require.NoError(t, err)

				require.NoError(t, p.signal(ctx, syscall.SIGUSR1))
				_, err = waitSignals(ctx, child, 1)
				require.NoError(t, err)
				// A signal to a group is queued to every member at once, so
				// by now the grandchild has SIGUSR1 pending if it got one;
				// a USR2 sent afterwards is recorded after it.
				require.NoError(t, syscall.Kill(gpid, syscall.SIGUSR2))
				got, err := waitSignals(ctx, grandchild, 1)
				require.NoError(t, err)
				if single {
					assert.Equal(t, []int{12}, got, "--single-child: the grandchild must not get SIGUSR1")
				} else {
					_, err = waitSignals(ctx, grandchild, 2)
					require.NoError(t, err)
					assert.Equal(t, []int{10, 12}, readSignals(grandchild), "the grandchild gets the group's SIGUSR1")
				}
				assert.Equal(t, []int{10}, readSignals(child))

				if single {
					return // the stop sequence in single-child mode: TestStopSingleChild
				}
				require.NoError(t, p.signal(ctx, syscall.SIGTERM))
				r := p.wait(ctx)
				assert.Equal(t, 143, r.code, "stderr: %s", r.stderr)
				assert.Less(t, r.elapsed, 10*time.Second, "both stop on TERM: no SIGKILL after the grace period")
				assert.Equal(t, []int{10, 15}, readSignals(child))
				assert.Equal(t, []int{10, 12, 15}, readSignals(grandchild))
			})
		})
	}
}

func lastOf(s []int) int {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// TestSignalsBeforeStart: signals that arrive while lifecycled waits for a
// --wait dependency (the child does not exist yet) are remembered and
// delivered, each exactly once, when the child has started — not before
// it has its handlers: the child is a shell that sets its traps only once
// it runs, as any program does. (sigrecorder cannot serve here: the Go
// runtime catches every signal from its first instruction and drops those
// that arrive before signal.Notify.)
func TestSignalsBeforeStart(t *testing.T) {
	const child = `for s in 1 10 12 39; do trap "echo $s >> signals" $s; done
trap 'echo 15 >> signals; exit 143' TERM
: > ready
while :; do sleep 0.05; done`
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 30*time.Second)
		dir, tomb := t.TempDir(), t.TempDir()
		goFile := filepath.Join(dir, "go")
		p := start(t, options{mode: m, dir: dir}, "--tombstone-dir", tomb, "--name", "rec",
			"--wait", "file://"+goFile, "--wait-interval", "50ms", "--", "sh", "-c", child)
		require.NotNil(t, p)
		// The tombstone says "waiting" only after lifecycled catches signals.
		require.NoError(t, poll(ctx, func() bool {
			b, _ := os.ReadFile(filepath.Join(tomb, "rec.json"))
			return strings.Contains(string(b), `"waiting"`)
		}), "tombstone phase waiting")

		send := []syscall.Signal{syscall.SIGUSR1, syscall.SIGHUP, syscall.Signal(39), syscall.SIGUSR2}
		for _, s := range send {
			require.NoError(t, p.signal(ctx, s))
		}
		assert.NoFileExists(t, filepath.Join(dir, "ready"), "the child must not run before its dependency is up")
		require.NoError(t, touch(goFile))

		// Order is not asserted: signals pending together are delivered by
		// the kernel, and handed out by the Go runtime, lowest number first.
		want := []int{10, 1, 39, 12}
		got, err := waitSignals(ctx, dir, len(want))
		require.NoError(t, err)
		assert.ElementsMatch(t, want, got, "every remembered signal")
		require.NoError(t, p.signal(ctx, syscall.SIGTERM))
		r := p.wait(ctx)
		assert.Equal(t, 143, r.code, "stderr: %s", r.stderr)
		all := readSignals(dir)
		if assert.Len(t, all, len(want)+1, "each exactly once: %v", all) {
			assert.ElementsMatch(t, want, all[:len(want)])
			assert.Equal(t, 15, all[len(want)])
		}
	})
}

// TestSignalsCaughtBeforeEarlyStart: without --wait or --tombstone-dir,
// lifecycled forks the child before its signal actor runs. A signal it
// caught before the fork but handles after it must wait for the child's
// handler, as one remembered before the start does: a shell's trap runs
// every time. The settings come from a pipe the test closes only once the
// signal is sent, so the signal always reaches lifecycled (past os/signal's
// initialisation) before the child can start. Before the fix 25 of 32
// tries ended 129 or 138.
func TestSignalsCaughtBeforeEarlyStart(t *testing.T) {
	const tries = 32
	sigs := []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1}
	trapped := 0
	for i := range tries {
		sig := sigs[i%len(sigs)]
		ctx := testContext(t, 30*time.Second)
		r, w, err := os.Pipe()
		require.NoError(t, err)
		p := startTraced(t, ctx, options{stdin: r}, "--config", "/dev/stdin", "--grace-period", "30s",
			"--", "sh", "-c", `trap 'exit 7' HUP USR1; sleep 30 & wait`)
		_ = r.Close()
		require.NoError(t, p.signal(ctx, sig))
		_ = w.Close() // an empty configuration: lifecycled goes on and starts the child
		res := p.wait(ctx)
		require.Empty(t, res.signal, "lifecycled killed by %v", sig)
		if assert.Equal(t, 7, res.code, "try %d, %v: the child's trap must run", i, sig) {
			trapped++
		}
	}
	t.Logf("%d of %d tries ran the trap", trapped, tries)
}

// TestSignalsStopStormOneLine: a storm of 1,000 SIGTERMs (a supervisor that
// repeats itself, a script in a loop) makes one "stop requested" line, not
// one per signal lifecycled receives (hundreds before the fix); the
// exiting line counts them all. The child stops only once the storm is
// over, so that every signal reaches a running lifecycled.
func TestSignalsStopStormOneLine(t *testing.T) {
	const storm = 1000
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 60*time.Second)
		dir := t.TempDir()
		p := start(t, options{mode: m, dir: dir}, "--grace-period", "30s", "--", "sh", "-c",
			`trap 'while [ ! -e over ]; do sleep 0.01; done; exit 0' TERM; : > ready; while :; do sleep 0.05; done`)
		require.NotNil(t, p)
		require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
		// 300 µs apart: sent back to back, the kernel would merge nearly
		// all of them while one is pending.
		for range storm {
			require.NoError(t, p.signal(ctx, syscall.SIGTERM))
			spin(300 * time.Microsecond)
		}
		require.NoError(t, touch(filepath.Join(dir, "over")))
		res := p.wait(ctx)
		require.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
		assert.Len(t, logRecords(res.stderr, "stop requested"), 1, "stderr:\n%s", res.stderr)
		exiting := logRecords(res.stderr, "exiting")
		require.Len(t, exiting, 1, "stderr:\n%s", res.stderr)
		n, _ := exiting[0]["stop_signals"].(float64)
		assert.Greater(t, n, 1.0, "the exiting line counts the stop signals received")
		assert.LessOrEqual(t, n, float64(storm))
		t.Logf("%s: lifecycled received %.0f of %d SIGTERMs (the kernel merges pending ones)", m, n, storm)
	})
}
