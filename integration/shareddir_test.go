package integration

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The files lifecycled keeps in a directory other containers share
// (--tombstone-dir, --hook-log-dir): whatever a neighbour puts there.

// waitStderr waits until p's captured stderr contains want.
func waitStderr(ctx context.Context, p *proc, want string) error {
	err := poll(ctx, func() bool { return strings.Contains(readAll(p.errFile), want) })
	if err != nil {
		return fmt.Errorf("wait for %q on stderr: %w\nstderr:\n%s", want, err, readAll(p.errFile))
	}
	return nil
}

// linesWith returns the lines of s that contain sub.
func linesWith(s, sub string) []string {
	var out []string
	for _, l := range lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// TestSharedDirSymlinks: a symlink a neighbour put at NAME.lock or
// NAME.hooks.log is never followed: the file it points to keeps its mode
// and content. At NAME.lock it is a configuration error (exit 2, one line,
// nothing started); at NAME.hooks.log one warning, and the run goes on.
func TestSharedDirSymlinks(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cr3t\n"), 0o600))
	checkSecret := func(t *testing.T) {
		fi, err := os.Stat(secret)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), "chmod went through the symlink")
		b, err := os.ReadFile(secret)
		require.NoError(t, err)
		assert.Equal(t, "s3cr3t\n", string(b), "written through the symlink")
	}

	t.Run("lock", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.Symlink(secret, filepath.Join(dir, "main.lock")))
		marker := filepath.Join(t.TempDir(), "started")
		res := runQuick(t, ctx, "--tombstone-dir", dir, "--name", "main", "--", "touch", marker)
		assert.Equal(t, 2, res.code, "stderr:\n%s", res.stderr)
		assert.Len(t, linesWith(res.stderr, "main.lock"), 1, "one line naming the lock:\n%s", res.stderr)
		assert.Contains(t, res.stderr, "lock tombstone "+filepath.Join(dir, "main.lock")+": open "+
			filepath.Join(dir, "main.lock")+": a symlink: not a regular file of its own")
		assert.NoFileExists(t, marker, "the child started")
		assert.NoFileExists(t, filepath.Join(dir, "main.json"), "a tombstone without its lock")
		checkSecret(t)
	})
	t.Run("hook log", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.Symlink(secret, filepath.Join(dir, "main.hooks.log")))
		res := runQuick(t, ctx, "--hook-log-dir", dir, "--name", "main", "--post-start", "true", "--", "true")
		assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
		assert.Equal(t, 1, strings.Count(res.stderr, "hook log unavailable"), "stderr:\n%s", res.stderr)
		assert.Contains(t, res.stderr, "a symlink")
		checkSecret(t)
	})
}

// TestSharedDirFIFOs: a FIFO (or /dev/zero) at a file lifecycled opens in a
// shared directory never blocks it or grows its memory: the child starts,
// SIGTERM is handled at once, the watched tombstone is refused with one
// line, a FIFO lock is a configuration error.
func TestSharedDirFIFOs(t *testing.T) {
	t.Parallel()
	mkfifo := func(path string) error { return syscall.Mkfifo(path, 0o644) }
	devZero := func(path string) error { return os.Symlink("/dev/zero", path) }

	// The hook log opened on the start path kept the child from starting
	// and SIGTERM from being handled: it must be neither.
	t.Run("hook log", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 30*time.Second)
		dir, childDir := t.TempDir(), t.TempDir()
		require.NoError(t, mkfifo(filepath.Join(dir, "main.hooks.log")))
		p := start(t, options{env: quickExit()}, append([]string{"--hook-log-dir", dir, "--name", "main", "--"},
			childTrapsTerm(childDir)...)...)
		require.NotNil(t, p)
		require.NoError(t, waitFile(ctx, filepath.Join(childDir, "ready")), "the child did not start; stderr:\n%s", readAll(p.errFile))
		require.NoError(t, p.signal(ctx, syscall.SIGTERM))
		sent := time.Now()
		res := p.wait(testContext(t, 10*time.Second))
		took := time.Since(sent)
		assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
		assert.Equal(t, 1, strings.Count(res.stderr, "hook log unavailable"), "stderr:\n%s", res.stderr)
		assert.Contains(t, res.stderr, "a FIFO")
		assert.FileExists(t, filepath.Join(childDir, "term"), "SIGTERM did not reach the child")
		t.Logf("SIGTERM to exit with a FIFO hook log: %s", took)
	})

	// The --exit-with watcher stuck in open(2) (FIFO) or reading without
	// end (/dev/zero): lifecycled never exited, or ran out of memory.
	for _, tt := range []struct {
		name string
		make func(string) error
	}{{"FIFO tombstone", mkfifo}, {"dev zero tombstone", devZero}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			dir, childDir := t.TempDir(), t.TempDir()
			require.NoError(t, tt.make(filepath.Join(dir, "job.json")))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "job.lock"), nil, 0o644))
			p := start(t, options{env: quickExit()}, append([]string{"--tombstone-dir", dir, "--name", "proxy",
				"--exit-with", "job", "--"}, childTrapsTerm(childDir)...)...)
			require.NotNil(t, p)
			require.NoError(t, waitFile(ctx, filepath.Join(childDir, "ready")))
			require.NoError(t, waitStderr(ctx, p, "refusing a file in the tombstone directory"))
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
			require.NoError(t, err)
			hwm := ""
			for _, l := range lines(string(status)) {
				if strings.HasPrefix(l, "VmHWM:") {
					hwm = strings.Join(strings.Fields(l)[1:], " ")
				}
			}
			require.NoError(t, p.signal(ctx, syscall.SIGTERM))
			sent := time.Now()
			res := p.wait(testContext(t, 10*time.Second))
			assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
			assert.Equal(t, 1, strings.Count(res.stderr, "refusing a file"), "one line, not one per poll:\n%s", res.stderr)
			kb, _ := strconv.Atoi(strings.Fields(hwm + " 0")[0])
			assert.Less(t, kb, 200<<10, "peak memory %s", hwm)
			t.Logf("SIGTERM to exit: %s; peak memory %s", time.Since(sent), hwm)
		})
	}

	t.Run("FIFO lock", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 20*time.Second)
		dir := t.TempDir()
		require.NoError(t, mkfifo(filepath.Join(dir, "main.lock")))
		marker := filepath.Join(t.TempDir(), "started")
		res := runQuick(t, ctx, "--tombstone-dir", dir, "--name", "main", "--", "touch", marker)
		assert.Equal(t, 2, res.code, "stderr:\n%s", res.stderr)
		assert.Len(t, linesWith(res.stderr, "main.lock"), 1, "one line naming the lock:\n%s", res.stderr)
		assert.Contains(t, res.stderr, "main.lock: a FIFO: not a regular file of its own")
		assert.NoFileExists(t, marker)
	})
}

// TestSharedDirSecondWriter: a second lifecycled with the same --name in
// the same directory exits 2 with one line naming the first one's pid,
// starts nothing and never touches the tombstone, so the first one's
// sidecars go on seeing it run.
func TestSharedDirSecondWriter(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir, childDir := t.TempDir(), t.TempDir()
	first := start(t, options{env: quickExit()}, append([]string{"--tombstone-dir", dir, "--name", "main", "--"},
		childTrapsTerm(childDir)...)...)
	require.NotNil(t, first)
	require.NoError(t, poll(ctx, func() bool {
		ts, err := readTombstoneFile(filepath.Join(dir, "main.json"))
		return err == nil && ts.Phase == "running"
	}))
	before, err := os.ReadFile(filepath.Join(dir, "main.json"))
	require.NoError(t, err)

	marker := filepath.Join(t.TempDir(), "started")
	res := runQuick(t, ctx, "--tombstone-dir", dir, "--name", "main", "--", "touch", marker)
	assert.Equal(t, 2, res.code, "stderr:\n%s", res.stderr)
	want := fmt.Sprintf("tombstone lock %s is held by pid %d: another lifecycled runs with the same --name",
		filepath.Join(dir, "main.lock"), first.cmd.Process.Pid)
	assert.Len(t, linesWith(res.stderr, "main.lock"), 1, "one line naming the lock:\n%s", res.stderr)
	assert.Contains(t, res.stderr, want)
	assert.NoFileExists(t, marker, "the second one started its child")
	after, err := os.ReadFile(filepath.Join(dir, "main.json"))
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "the second one wrote the tombstone")

	require.NoError(t, first.signal(ctx, syscall.SIGTERM))
	assert.Equal(t, 0, first.wait(ctx).code)
	ts, err := readTombstoneFile(filepath.Join(dir, "main.json"))
	require.NoError(t, err)
	assert.Equal(t, "exited", ts.Phase)
}

// TestSharedDirExitWithEarlyDeath: a neighbour lifecycled SIGKILLed in its
// first moments (50–100 ms after its start, once its first tombstone is
// there) holds its lock only between two of the watcher's polls; the
// tombstone it wrote after the watcher's first look proves it lived, and
// the watcher stops. Eight rounds: with a 250 ms poll, a round catches the
// lock held by luck now and then (about half the rounds on the code
// before, where every other round hung).
func TestSharedDirExitWithEarlyDeath(t *testing.T) {
	t.Parallel()
	const rounds = 8
	for i := range rounds {
		ctx := testContext(t, 30*time.Second)
		dir, childDir := t.TempDir(), t.TempDir()
		sidecar := start(t, options{env: quickExit()}, append([]string{"--tombstone-dir", dir, "--name", "proxy",
			"--exit-with", "job", "--log-level", "debug", "--"}, childTrapsTerm(childDir)...)...)
		require.NotNil(t, sidecar)
		// The watcher's first look is its baseline: only a tombstone
		// written after it proves a writer lived.
		require.NoError(t, waitStderr(ctx, sidecar, `"watching tombstone"`))

		job := start(t, options{env: quickExit()}, "--tombstone-dir", dir, "--name", "job", "--", "sleep", "60")
		require.NotNil(t, job)
		// 50–100 ms after its start, and not before its first tombstone:
		// a writer killed before it wrote anything leaves no trace.
		killAt := job.started.Add(time.Duration(50+rand.IntN(51)) * time.Millisecond)
		require.NoError(t, waitFile(ctx, filepath.Join(dir, "job.json")))
		time.Sleep(time.Until(killAt)) // the moment of death is what the test varies, no event to wait for
		require.NoError(t, job.signal(ctx, syscall.SIGKILL))
		alive := time.Since(job.started)
		killed := time.Now()
		assert.Equal(t, "killed", job.wait(ctx).signal)
		ts, err := readTombstoneFile(filepath.Join(dir, "job.json"))
		require.NoError(t, err)
		require.NotEqual(t, "exited", ts.Phase)

		res := sidecar.wait(testContext(t, 10*time.Second))
		assert.Equal(t, 0, res.code, "round %d: sidecar stderr:\n%s", i, res.stderr)
		assert.Contains(t, res.stderr, "job died without writing exited (lock released)", "round %d", i)
		t.Logf("round %d: job killed %s after its start, in phase %s; sidecar stopped %s later", i, alive, ts.Phase, time.Since(killed))
	}
}
