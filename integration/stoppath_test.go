package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// stalledFIFO makes a FIFO that nobody reads: the test holds it open for
// reading and writing (as `exec 7<>f` does), so writers never get EPIPE,
// they block once its buffer is full. It returns the write end to hand to
// lifecycled as stderr and the test's own end, to look at what is queued.
func stalledFIFO(t *testing.T) (w, held *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stderr.fifo")
	require.NoError(t, unix.Mkfifo(path, 0o600))
	held, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = held.Close() })
	w, err = os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	return w, held
}

// fifoFull waits until f's pipe buffer is full: every writer of it blocks.
func fifoFull(ctx context.Context, f *os.File) error {
	size, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return fmt.Errorf("F_GETPIPE_SZ: %w", err)
	}
	return poll(ctx, func() bool {
		n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ) // bytes queued (FIONREAD)
		return err == nil && n >= size-4096                   // full but for less than a page
	})
}

// TestStopStalledStderr: lifecycled's stderr is a FIFO that nobody reads
// (a log driver whose backend is down) and the child has filled it. No log
// line may sit between SIGTERM and the stop signal, or between the grace
// period and SIGKILL: the child gets the stop signal at once, SIGKILL when
// the grace period ends (also at --log-level warn, where the "grace period
// over" warning is the one line written), and lifecycled exits with the
// child's status.
func TestStopStalledStderr(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		script string
		code   int
		killed bool // SIGKILL at the grace period
	}{
		{
			name:   "child stops on TERM",
			script: `trap 'touch got_term; exit 0' TERM`,
			code:   0,
		},
		{
			name:   "child ignores TERM, log level warn",
			args:   []string{"--log-level", "warn"},
			script: `trap 'touch got_term' TERM`,
			code:   137, killed: true,
		},
	}
	const grace = 3 * time.Second
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, m mode) {
				ctx := testContext(t, 60*time.Second)
				dir := t.TempDir()
				w, held := stalledFIFO(t)
				// The filler is a group mate that writes to stderr
				// until the FIFO is full and then blocks in write. The
				// shell itself then writes nowhere (dash reports a
				// killed foreground job on its stderr), so that the
				// child can always tell it got the signal.
				script := tc.script + `; cat /dev/zero >&2 & exec 2>/dev/null; touch ready; while :; do sleep 0.05; done`
				args := append([]string{"--grace-period", grace.String()}, tc.args...)
				p := start(t, options{mode: m, dir: dir, stderr: w}, append(args, "--", "sh", "-c", script)...)
				require.NotNil(t, p)
				require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
				require.NoError(t, fifoFull(ctx, held))

				sent := time.Now()
				require.NoError(t, p.signal(ctx, syscall.SIGTERM))
				require.NoError(t, waitFile(testContext(t, 20*time.Second), filepath.Join(dir, "got_term")),
					"the child never got the stop signal")
				assert.Less(t, time.Since(sent), 2*time.Second, "stop signal late (0.5 s expected)")
				r := p.wait(ctx)
				took := time.Since(sent)
				assert.Equal(t, tc.code, r.code, "signal %q", r.signal)
				if tc.killed {
					assert.GreaterOrEqual(t, took, grace, "SIGKILL before the grace period")
				}
				assert.Less(t, took, grace+5*time.Second, "lifecycled exited too late")
			})
		})
	}
}

// TestStopGraceIsACeilingWithZombie: a zombie in the child's process group
// whose parent lives outside the group and does not reap it keeps the group
// alive after SIGKILL. lifecycled must not wait for that parent: it exits
// with the child's status shortly after SIGKILL, naming what was left.
func TestStopGraceIsACeilingWithZombie(t *testing.T) {
	// The child's background job forks the zombie-to-be (in the child's
	// group), moves itself to a group of its own and sleeps 20 s without
	// reaping it.
	const maker = `perl -e '
		my $z = fork(); if ($z == 0) { exit 0 }
		setpgrp(0, 0);
		select(undef, undef, undef, 0.2);
		open(my $f, ">", "ready"); close($f);
		sleep 20' &
		exec sleep 30`
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 60*time.Second)
		dir := t.TempDir()
		r, took := stopWhenReady(t, ctx, options{mode: m, dir: dir}, "--grace-period", "1s", "--", "sh", "-c", maker)
		assert.Equal(t, 143, r.code, "stderr: %s", r.stderr)
		assert.GreaterOrEqual(t, took, time.Second, "the zombie keeps the group: SIGKILL comes at the grace period")
		assert.Less(t, took, 6*time.Second, "the wait after SIGKILL must be bounded (the zombie's parent sleeps 20 s)")
		assert.Contains(t, r.stderr, "left in the child's process group")
	})
}

// startTraced starts lifecycled with GODEBUG=inittrace=1 and returns once
// the runtime has reported the package initialised right after os/signal,
// that is once every init up to it has run: the earliest moment a package
// of the binary can have called signal.Notify. Before the fix that moment
// was long before main's Notify; now it is earlysignal's own line.
func startTraced(t *testing.T, ctx context.Context, o options, args ...string) *proc {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	o.stderr = w
	o.env = append(o.env, "GODEBUG=inittrace=1")
	p := start(t, o, args...)
	_ = w.Close()
	require.NotNil(t, p)
	marker := make(chan struct{})
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		afterSignal := false
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "init ") {
				continue
			}
			if afterSignal {
				close(marker)
				break
			}
			afterSignal = strings.HasPrefix(line, "init os/signal ")
		}
		_, _ = io.Copy(io.Discard, r) // lifecycled's logs, until it exits
	}()
	select {
	case <-marker:
	case <-ctx.Done():
		t.Fatalf("no init trace after os/signal: %v", ctx.Err())
	}
	return p
}

// spin waits d without giving the CPU away, for sub-millisecond precision.
func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

// TestSignalsInTheFirstMilliseconds: a signal that reaches lifecycled at
// any moment once its packages can catch signals (os/signal initialised,
// which on an idle machine is some 0.3 ms after exec) is handled as the
// README says, while the other packages are still initialising. As PID 1,
// SIGTERM stops the child: 143, never the runtime's silent exit 2. Not as
// PID 1, HUP, USR1 and USR2 are remembered and forwarded once the child
// runs, never fatal.
func TestSignalsInTheFirstMilliseconds(t *testing.T) {
	const steps, step = 20, 100 * time.Microsecond
	t.Run("pid1 TERM", func(t *testing.T) {
		for i := range steps {
			ctx := testContext(t, 30*time.Second)
			p := startTraced(t, ctx, options{mode: pid1}, "--grace-period", "30s", "--", "sleep", "30")
			spin(time.Duration(i) * step)
			require.NoError(t, p.signal(ctx, syscall.SIGTERM))
			r := p.wait(ctx)
			assert.Equal(t, 143, r.code, "SIGTERM %v after os/signal's init", time.Duration(i)*step)
		}
	})
	t.Run("plain HUP USR1 USR2", func(t *testing.T) {
		sigs := []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2}
		for i := range steps {
			sig := sigs[i%len(sigs)]
			ctx := testContext(t, 30*time.Second)
			p := startTraced(t, ctx, options{}, "--grace-period", "30s", "--", "sh", "-c", `trap 'exit 7' HUP USR1 USR2; sleep 30 & wait`)
			spin(time.Duration(i) * step)
			require.NoError(t, p.signal(ctx, sig))
			r := p.wait(ctx)
			require.Empty(t, r.signal, "lifecycled killed by %v %v after os/signal's init", sig, time.Duration(i)*step)
			// 7: the child's trap; 128+N: the signal came after the
			// child's start but before its trap, which is the child's
			// race, not lifecycled's.
			assert.Contains(t, []int{7, 128 + int(sig)}, r.code, "%v %v after os/signal's init", sig, time.Duration(i)*step)
		}
	})
}

// TestSleepStoppedBySignal: `lifecycled sleep` (a preStop hook in images
// without /bin/sleep) answers SIGTERM like the stop it is, 128+15, as PID 1
// (where the Go runtime would exit 2) and not.
func TestSleepStoppedBySignal(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 30*time.Second)
		// Once its packages are initialised: this is about sleep's
		// answer, not about the first moments.
		p := startTraced(t, ctx, options{mode: m}, "sleep", "30")
		pid, err := p.lifecycledPid(ctx)
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond)
		sent := time.Now()
		require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
		r := p.wait(ctx)
		assert.Equal(t, 143, r.code, "signal %q, stderr: %s", r.signal, r.stderr)
		assert.Less(t, time.Since(sent), 5*time.Second)
	})
}

// TestStalledStderrDropsLinesNotWork: while nobody reads lifecycled's stderr,
// its own log lines are dropped and counted, and its work goes on. The
// child makes orphans, each reaped with a debug line, far more than the
// 1,024 lines the log queue holds: every orphan is reaped all the same,
// /metrics counts the dropped lines, and once stderr is read again one line
// says how many were lost.
func TestStalledStderrDropsLinesNotWork(t *testing.T) {
	const orphans = 1200
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 90*time.Second)
		dir := t.TempDir()
		w, held := stalledFIFO(t)
		addr := listenAddr(t)
		// The filler fills the FIFO and blocks in write (see
		// TestStopStalledStderr); at "go" the child makes its orphans
		// (each a grandchild that exits at once), at "drain" it stops
		// the filler.
		script := fmt.Sprintf(`cat /dev/zero >&2 & filler=$!; exec 2>/dev/null; touch ready
			while [ ! -e go ]; do sleep 0.05; done
			perl -e 'for (1..%d) { my $p = fork(); if ($p == 0) { fork() or exit 0; exit 0 } waitpid($p, 0) }'
			touch made
			while [ ! -e drain ]; do sleep 0.05; done
			kill $filler; while :; do sleep 0.05; done`, orphans)
		p := start(t, options{mode: m, dir: dir, stderr: w},
			"--log-level", "debug", "--listen", addr, "--grace-period", "2s", "--", "sh", "-c", script)
		require.NotNil(t, p)
		require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
		require.NoError(t, fifoFull(ctx, held))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "go"), nil, 0o644))
		require.NoError(t, waitFile(ctx, filepath.Join(dir, "made")))

		// /metrics answers while stderr is stalled, and every orphan
		// was reaped.
		var reaped float64
		err := poll(ctx, func() bool {
			reaped, _ = scrapeMetric(ctx, addr, "lifecycled_zombies_reaped_total")
			return reaped >= orphans
		})
		require.NoError(t, err, "orphans reaped: %v of %d", reaped, orphans)
		assert.Equal(t, float64(orphans), reaped)
		dropped, err := scrapeMetric(ctx, addr, "lifecycled_log_lines_dropped_total")
		require.NoError(t, err)
		// One debug line per orphan; the queue holds 1,024 and the
		// writer blocked on the FIFO one more.
		assert.GreaterOrEqual(t, dropped, float64(orphans-1025), "dropped lines counted")

		// Read stderr again: the queued lines come out, then the line
		// that reports the loss. (A reader of its own: held's Fd was
		// taken, so its deadlines no longer work, and with writers left
		// a FIFO never ends.)
		reader, err := os.OpenFile(held.Name(), os.O_RDONLY, 0)
		require.NoError(t, err)
		t.Cleanup(func() { _ = reader.Close() })
		var out strings.Builder
		read := func(d time.Duration) {
			buf := make([]byte, 64<<10)
			for {
				require.NoError(t, reader.SetReadDeadline(time.Now().Add(d)))
				n, err := reader.Read(buf)
				out.Write(buf[:n])
				if err != nil {
					return
				}
			}
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "drain"), nil, 0o644))
		read(2 * time.Second)
		require.NoError(t, p.signal(ctx, syscall.SIGTERM))
		r := p.wait(ctx)
		read(500 * time.Millisecond)
		assert.Equal(t, 143, r.code, "the child's shell dies of the SIGTERM")

		var report map[string]any
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.Contains(line, `"dropped log lines: stderr was not being read"`) {
				require.NoError(t, json.Unmarshal([]byte(line), &report), "line %q", line)
			}
		}
		require.NotNil(t, report, "no line reports the dropped lines")
		assert.GreaterOrEqual(t, report["lines"], float64(orphans-1025))
		assert.LessOrEqual(t, report["lines"], dropped+10, "reported more than counted")
	})
}
