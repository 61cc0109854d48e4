package tombstone

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/supervisor"
)

// lockHolderArg makes the test binary a tombstone writer: a real process
// that holds the lock the way lifecycled does, so that the tests can
// SIGKILL it. It runs from init, before TestMain, to stay out of the
// sequence helpers.
const lockHolderArg = "drain-test-lock-holder"

// init runs the lock holder: `lock-holder DIR NAME PHASE`: lock, write
// PHASE, print "locked", then wait for a line on stdin; "exit" writes
// exited and returns (the clean end).
func init() {
	if len(os.Args) != 5 || os.Args[1] != lockHolderArg {
		return
	}
	dir, name, phase := os.Args[2], os.Args[3], os.Args[4]
	lock, err := AcquireLock(dir, name)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(3)
	}
	if err := Write(dir, Tombstone{Name: name, Phase: phase}); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(3)
	}
	os.Stdout.WriteString("locked\n")
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if line == "exit\n" {
		if err := Write(dir, Tombstone{Name: name, Phase: PhaseExited, ExitCode: intPtr(0)}); err != nil {
			os.Exit(3)
		}
	}
	_ = lock.Close()
	os.Exit(0)
}

// lockHolder is a started lock holder process. It starts through the
// package's one reaper (testReaper), which reaps every child of the test
// binary: an exec.Cmd's own Wait would race it ("waitid: no child
// processes").
type lockHolder struct {
	child *supervisor.Child
	stdin *os.File
}

// startLockHolder starts a process that locks NAME's tombstone in dir and
// writes phase, and returns once it holds the lock.
func startLockHolder(t *testing.T, dir, name, phase string) *lockHolder {
	t.Helper()
	inR, inW, err := os.Pipe()
	require.NoError(t, err)
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	child, err := testReaper.Start(supervisor.Spec{
		Argv:  []string{os.Args[0], lockHolderArg, dir, name, phase},
		Stdin: inR, Stdout: outW, Stderr: os.Stderr,
	})
	require.NoError(t, err)
	_ = inR.Close()
	_ = outW.Close()
	h := &lockHolder{child: child, stdin: inW}
	t.Cleanup(func() {
		_ = child.Kill()
		<-child.Done()
		_ = inW.Close()
		_ = outR.Close()
	})
	line, err := bufio.NewReader(outR).ReadString('\n')
	require.NoError(t, err, "the lock holder did not start")
	require.Equal(t, "locked\n", line)
	return h
}

// kill SIGKILLs the holder and reaps it: the kernel has dropped its lock
// when kill returns.
func (h *lockHolder) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, h.child.Kill())
	<-h.child.Done()
}

// exit makes the holder write exited and exit 0.
func (h *lockHolder) exit(t *testing.T) {
	t.Helper()
	_, err := h.stdin.WriteString("exit\n")
	require.NoError(t, err)
	<-h.child.Done()
	require.Equal(t, 0, supervisor.ExitCode(h.child.Status()))
}

// watchResult is what WatchExited returned.
type watchResult struct {
	died []string
	err  error
}

func watch(ctx context.Context, dir string, names ...string) <-chan watchResult {
	out := make(chan watchResult, 1)
	go func() {
		died, err := WatchExited(ctx, dir, names, 10*time.Millisecond, nil)
		out <- watchResult{died, err}
	}()
	return out
}

func requireWaiting(t *testing.T, result <-chan watchResult, what string) {
	t.Helper()
	select {
	case r := <-result:
		t.Fatalf("WatchExited returned %v, %v while %s", r.died, r.err, what)
	case <-time.After(200 * time.Millisecond):
	}
}

func requireResult(t *testing.T, result <-chan watchResult) watchResult {
	t.Helper()
	select {
	case r := <-result:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("WatchExited did not return")
	}
	return watchResult{}
}

// TestTombstoneLockKilledWriter: a writer killed by SIGKILL leaves its
// tombstone saying running; the watcher that saw it alive reports it died.
func TestTombstoneLockKilledWriter(t *testing.T) {
	for _, phase := range []string{PhaseWaiting, PhaseRunning, PhaseDraining} {
		t.Run(phase, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			result := watch(ctx, dir, "job")
			requireWaiting(t, result, "the writer has not started")

			h := startLockHolder(t, dir, "job", phase)
			held, err := locked(dir, "job")
			require.NoError(t, err)
			assert.True(t, held)
			requireWaiting(t, result, "the writer lives")

			h.kill(t)
			held, err = locked(dir, "job")
			require.NoError(t, err)
			assert.False(t, held, "the kernel did not drop the lock of a killed process")
			ts, err := read(dir, "job")
			require.NoError(t, err)
			require.Equal(t, phase, ts.Phase, "the killed writer's last word stays")

			r := requireResult(t, result)
			require.NoError(t, r.err)
			assert.Equal(t, []string{"job"}, r.died)
		})
	}
}

// TestTombstoneLockCleanExit: a writer that writes exited and exits is not
// reported dead, however fast its lock goes after the write.
func TestTombstoneLockCleanExit(t *testing.T) {
	dir := t.TempDir()
	result := watch(context.Background(), dir, "job")
	h := startLockHolder(t, dir, "job", PhaseRunning)
	requireWaiting(t, result, "the writer lives")
	h.exit(t)
	r := requireResult(t, result)
	require.NoError(t, r.err)
	assert.Empty(t, r.died)
}

// TestTombstoneLockNeverSeenAlive: a free lock under a tombstone saying
// running, never seen held, is a previous run's (the writer is about to be
// restarted) or a writer not started yet: the watcher keeps waiting, and
// follows the next writer.
func TestTombstoneLockNeverSeenAlive(t *testing.T) {
	dir := t.TempDir()
	startLockHolder(t, dir, "job", PhaseRunning).kill(t)
	result := watch(context.Background(), dir, "job", "proxy")
	requireWaiting(t, result, "job's lock was never seen held")

	job := startLockHolder(t, dir, "job", PhaseStarting)
	proxy := startLockHolder(t, dir, "proxy", PhaseRunning)
	requireWaiting(t, result, "both live")
	job.kill(t)
	requireWaiting(t, result, "proxy lives")
	proxy.exit(t)
	r := requireResult(t, result)
	require.NoError(t, r.err)
	assert.Equal(t, []string{"job"}, r.died, "job died, proxy exited")
}

// TestTombstoneLockHeld: one writer per name; the lock is free again once
// closed; the watcher's test takes nothing.
func TestTombstoneLockHeld(t *testing.T) {
	dir := t.TempDir()
	_, err := locked(dir, "job")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	h := startLockHolder(t, dir, "job", PhaseRunning)
	_, err = AcquireLock(dir, "job")
	var held *HeldError
	if assert.ErrorAs(t, err, &held) {
		assert.Equal(t, h.child.Pid(), held.PID, "the holder's pid, from the lock file")
		assert.ErrorContains(t, err, fmt.Sprintf("held by pid %d", h.child.Pid()))
	}
	h.kill(t)

	for range 3 { // locked between the writers must not get in the way
		l, err := AcquireLock(dir, "job")
		require.NoError(t, err)
		held, err := locked(dir, "job")
		require.NoError(t, err)
		assert.True(t, held)
		require.NoError(t, l.Close())
		held, err = locked(dir, "job")
		require.NoError(t, err)
		assert.False(t, held)
	}
	fi, err := os.Stat(filepath.Join(dir, "job.lock"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o644), fi.Mode().Perm(), "a watcher running as another user must be able to open it")

	_, err = AcquireLock(dir, "../x")
	assert.Error(t, err)
	var nilLock *Lock
	assert.NoError(t, nilLock.Close())
}

// BenchmarkWatchLook is the cost of one poll of one name (lock test and
// tombstone read), the price of polling instead of inotify.
func BenchmarkWatchLook(b *testing.B) {
	dir := b.TempDir()
	l, err := AcquireLock(dir, "job")
	require.NoError(b, err)
	defer l.Close()
	require.NoError(b, Write(dir, Tombstone{Name: "job", Phase: PhaseRunning}))
	var w watched
	for b.Loop() {
		if w.look(dir, "job") != endNone {
			b.Fatal("ended")
		}
	}
}
