package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCmd runs argv to its end and returns its exit code, stdout and stderr.
func runCmd(t *testing.T, argv ...string) (int, string, string) {
	t.Helper()
	return runStdin(t, "", argv...)
}

// TestInstall: `lifecycled install DIR` puts a working copy of the running
// binary at DIR/lifecycled, mode 0755; a second run leaves the file alone
// (same inode, same mtime); a different file there is replaced by a new
// inode (rename, never written in place).
func TestInstall(t *testing.T) {
	bin := lifecycledBin(t)
	want, err := os.ReadFile(bin)
	require.NoError(t, err)
	dir := t.TempDir()
	dst := filepath.Join(dir, "lifecycled")

	code, out, stderr := runCmd(t, bin, "install", dir)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "installed")
	st, err := os.Stat(dst)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "DIR/lifecycled is the binary")
	code, out, _ = runCmd(t, dst, "version")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "lifecycled ")

	ino := st.Sys().(*syscall.Stat_t).Ino
	code, out, stderr = runCmd(t, bin, "install", dir)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "left as it is")
	st2, err := os.Stat(dst)
	require.NoError(t, err)
	assert.Equal(t, ino, st2.Sys().(*syscall.Stat_t).Ino, "same content: not rewritten")
	assert.Equal(t, st.ModTime(), st2.ModTime())

	require.NoError(t, os.WriteFile(dst, []byte("old"), 0o755))
	st3, err := os.Stat(dst)
	require.NoError(t, err)
	code, _, stderr = runCmd(t, bin, "install", dir)
	require.Equal(t, 0, code, stderr)
	st4, err := os.Stat(dst)
	require.NoError(t, err)
	assert.NotEqual(t, st3.Sys().(*syscall.Stat_t).Ino, st4.Sys().(*syscall.Stat_t).Ino, "replaced by rename")
	got, err = os.ReadFile(dst)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")
}

// TestInstallNonRoot: as an unprivileged user (the restricted pod's
// runAsNonRoot), install writes into a world-writable directory (an
// emptyDir is 0777) and refuses a directory it may not write with exit 2
// and one line.
func TestInstallNonRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to another user")
	}
	// The binary where user nobody may run it.
	base, err := os.MkdirTemp("", "lifecycled-install-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	bin := filepath.Join(base, "lifecycled")
	data, err := os.ReadFile(lifecycledBin(t))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, data, 0o755))
	nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "install"}

	open := filepath.Join(base, "emptydir")
	require.NoError(t, os.Mkdir(open, 0o777))
	require.NoError(t, os.Chmod(open, 0o777))
	code, _, stderr := runCmd(t, append(nobody, open)...)
	require.Equal(t, 0, code, stderr)
	st, err := os.Stat(filepath.Join(open, "lifecycled"))
	require.NoError(t, err)
	assert.Equal(t, uint32(65534), st.Sys().(*syscall.Stat_t).Uid, "copied as the non-root user")
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())

	closed := filepath.Join(base, "closed")
	require.NoError(t, os.Mkdir(closed, 0o555))
	code, _, stderr = runCmd(t, append(nobody, closed)...)
	assert.Equal(t, 2, code)
	assert.Len(t, lines(stderr), 1, stderr)
	assert.Contains(t, stderr, closed)
	assert.Contains(t, stderr, "permission denied")
}

// TestInstallBadDir: a missing DIR, a file, a read-only mount (a bind
// mount remounted read-only in a private mount namespace: root is not
// stopped by modes, only by the mount) and no DIR at all exit 2 with one
// line naming the cause; nothing is written.
func TestInstallBadDir(t *testing.T) {
	bin := lifecycledBin(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, touch(file))
	ro := filepath.Join(dir, "ro")
	require.NoError(t, os.Mkdir(ro, 0o777))
	for _, tc := range []struct {
		name  string
		argv  []string
		cause []string
	}{
		{"missing", []string{bin, "install", filepath.Join(dir, "nope")}, []string{"nope", "no such file or directory"}},
		{"a file", []string{bin, "install", file}, []string{file, "not a directory"}},
		{"no DIR", []string{bin, "install"}, []string{"install takes one DIR"}},
		{"two DIRs", []string{bin, "install", dir, dir}, []string{"install takes one DIR"}},
		{"read-only mount", []string{"unshare", "-rm", "sh", "-c",
			`mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" install "$1"`, "sh", ro, bin},
			[]string{ro, "read-only file system"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCmd(t, tc.argv...)
			assert.Equal(t, 2, code, out+stderr)
			assert.Len(t, lines(stderr), 1, stderr)
			for _, c := range tc.cause {
				assert.Contains(t, stderr, c)
			}
			assert.False(t, strings.Contains(stderr, "panic"))
		})
	}
	entries, err := os.ReadDir(ro)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written on the read-only mount")
}
