package sharedfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOpen: created is true only for the call that made the file, and
// whatever else is at the path is refused at once, naming what it is.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	f, created, err := Open(path, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	assert.True(t, created)
	require.NoError(t, f.Close())
	f, created, err = Open(path, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	assert.False(t, created, "an existing file is not this call's to chmod")
	require.NoError(t, f.Close())

	for _, tt := range []struct {
		name, want string
		flag       int
		make       func(path string) error
	}{
		{"symlink", "a symlink", os.O_RDONLY, func(p string) error { return os.Symlink(path, p) }},
		{"dangling symlink with O_CREATE", "a symlink", os.O_WRONLY | os.O_CREATE, func(p string) error {
			return os.Symlink(filepath.Join(dir, "nowhere"), p)
		}},
		{"FIFO read", "a FIFO", os.O_RDONLY, func(p string) error { return syscall.Mkfifo(p, 0o644) }},
		{"FIFO write, no reader", "a FIFO", os.O_WRONLY | os.O_APPEND | os.O_CREATE, func(p string) error { return syscall.Mkfifo(p, 0o644) }},
		{"directory", "a directory", os.O_RDONLY, func(p string) error { return os.Mkdir(p, 0o755) }},
		{"hard link", "2 hard links", os.O_RDWR, func(p string) error { return os.Link(path, p) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x")
			require.NoError(t, tt.make(p))
			start := time.Now()
			_, _, err := Open(p, tt.flag, 0o644)
			assert.Less(t, time.Since(start), time.Second)
			require.ErrorIs(t, err, ErrNotRegular)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

// TestReadFile: at most max bytes, whatever the file holds.
func TestReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, make([]byte, 100), 0o644))
	b, err := ReadFile(path, 100)
	require.NoError(t, err)
	assert.Len(t, b, 100)
	_, err = ReadFile(path, 99)
	assert.ErrorIs(t, err, ErrTooLong)
}
