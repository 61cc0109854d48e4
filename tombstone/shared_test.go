package tombstone

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/lifecycled/lifecycled/internal/proctest"
	"github.com/lifecycled/lifecycled/internal/sharedfile"
)

// TestTombstoneSharedDirHostile: whatever another container puts at
// NAME.lock or NAME.json (a symlink, a FIFO, /dev/zero) is refused at once,
// never followed, waited on or read without bound; the file a symlink
// points to keeps its mode and content.
func TestTombstoneSharedDirHostile(t *testing.T) {
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cr3t\n"), 0o600))

	t.Run("symlink at the lock", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.Symlink(secret, lockPath(dir, "job")))
		_, err := AcquireLock(dir, "job")
		require.ErrorIs(t, err, sharedfile.ErrNotRegular)
		assert.ErrorContains(t, err, "symlink")
		_, err = locked(dir, "job")
		assert.ErrorIs(t, err, sharedfile.ErrNotRegular)
		fi, err := os.Stat(secret)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), "chmod went through the symlink")
		b, err := os.ReadFile(secret)
		require.NoError(t, err)
		assert.Equal(t, "s3cr3t\n", string(b))
	})
	t.Run("FIFO at the lock", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, syscall.Mkfifo(lockPath(dir, "job"), 0o644))
		var err error
		proctest.Within(t, 5*time.Second, func() { _, err = AcquireLock(dir, "job") })
		require.ErrorIs(t, err, sharedfile.ErrNotRegular)
		assert.ErrorContains(t, err, "FIFO")
	})
	t.Run("hard link at the lock", func(t *testing.T) {
		dir := t.TempDir()
		other := filepath.Join(dir, "other")
		require.NoError(t, os.WriteFile(other, nil, 0o600))
		require.NoError(t, os.Link(other, lockPath(dir, "job")))
		_, err := AcquireLock(dir, "job")
		require.ErrorIs(t, err, sharedfile.ErrNotRegular)
	})
	for _, tt := range []struct {
		name string
		make func(path string) error
	}{
		{"FIFO", func(path string) error { return syscall.Mkfifo(path, 0o644) }},
		{"dev zero", func(path string) error { return os.Symlink("/dev/zero", path) }},
		{"symlink", func(path string) error { return os.Symlink(secret, path) }},
		{"too long", func(path string) error { return os.WriteFile(path, make([]byte, 1<<20), 0o644) }},
	} {
		t.Run(tt.name+" at the tombstone", func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, tt.make(tombstonePath(dir, "job")))
			var err error
			proctest.Within(t, 5*time.Second, func() { _, err = read(dir, "job") })
			assert.True(t, errors.Is(err, sharedfile.ErrNotRegular) || errors.Is(err, sharedfile.ErrTooLong), "%v", err)

			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			proctest.Within(t, 5*time.Second, func() { _, err = WatchExited(ctx, dir, []string{"job"}, 10*time.Millisecond, nil) })
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		})
	}
	t.Run("symlink at the tombstone is replaced, not written through", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.Symlink(secret, tombstonePath(dir, "job")))
		require.NoError(t, Write(dir, Tombstone{Name: "job", Phase: PhaseRunning}))
		got, err := read(dir, "job")
		require.NoError(t, err)
		assert.Equal(t, PhaseRunning, got.Phase)
		b, err := os.ReadFile(secret)
		require.NoError(t, err)
		assert.Equal(t, "s3cr3t\n", string(b))
	})
}

// TestTombstoneChangedProvesAWriter: a writer that locks, writes and dies
// between two looks is never seen holding its lock; the tombstone it wrote
// after the first look proves it lived, so the next look that finds the
// lock free reports it dead. A tombstone already there at the first look
// proves nothing (a previous run's). Looks are driven by hand: which poll
// the writer falls between is the whole point.
func TestTombstoneChangedProvesAWriter(t *testing.T) {
	writeAndDie := func(dir string) {
		lock, err := AcquireLock(dir, "job")
		require.NoError(t, err)
		require.NoError(t, Write(dir, Tombstone{Name: "job", Phase: PhaseRunning}))
		require.NoError(t, lock.Close())
	}
	t.Run("appeared after the first look", func(t *testing.T) {
		dir := t.TempDir()
		var w watched
		w.logger = zaptest.NewLogger(t)
		assert.Equal(t, endNone, w.look(dir, "job"))
		writeAndDie(dir)
		// Read in this look, after the lock test: not proof yet.
		assert.Equal(t, endNone, w.look(dir, "job"))
		assert.Equal(t, endDied, w.look(dir, "job"))
	})
	t.Run("changed after the first look", func(t *testing.T) {
		dir := t.TempDir()
		writeAndDie(dir) // a previous run's
		var w watched
		w.logger = zaptest.NewLogger(t)
		assert.Equal(t, endNone, w.look(dir, "job"))
		assert.Equal(t, endNone, w.look(dir, "job"), "a previous run's tombstone is no proof")
		writeAndDie(dir)
		assert.Equal(t, endNone, w.look(dir, "job"))
		assert.Equal(t, endDied, w.look(dir, "job"))
	})
	t.Run("unchanged", func(t *testing.T) {
		dir := t.TempDir()
		writeAndDie(dir)
		var w watched
		w.logger = zaptest.NewLogger(t)
		for range 5 {
			assert.Equal(t, endNone, w.look(dir, "job"))
		}
	})
}
