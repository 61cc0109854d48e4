// Package install is `lifecycled install DIR`: the running binary copied
// into DIR, for an init container of an image that has no cp (FROM
// scratch) to put lifecycled on a volume the app container runs it from.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Name is the file Binary writes in DIR.
const Name = "lifecycled"

// Mode is the installed file's mode: every user may run it, since the app
// container may run as another user than the init container did.
const Mode = 0o755

// ErrDir is wrapped by the errors of a DIR that is missing, not a
// directory, or not writable: the caller's mistake (exit 2), not a failed
// copy.
var ErrDir = errors.New("cannot install there")

// Result says what Binary did.
type Result struct {
	// Path is DIR/lifecycled.
	Path string
	// Unchanged is set when Path already held the same bytes with Mode:
	// nothing was written.
	Unchanged bool
	// Size is the binary's size in bytes.
	Size int64
}

// Binary copies the file src (the running binary: /proc/self/exe) into
// dir/lifecycled atomically: a temporary file in dir, written, set to
// Mode, fsynced and renamed over the old one, then dir fsynced, so that a
// reader sees the old file or the whole new one, never a part. A file
// that already holds the same bytes with Mode is left as it is (not even
// its mtime changes), so a restarted init container does nothing.
func Binary(src, dir string) (Result, error) {
	r := Result{Path: filepath.Join(dir, Name)}
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return r, fmt.Errorf("%s: %w: %w", dir, ErrDir, unwrapPath(err))
	case !st.IsDir():
		return r, fmt.Errorf("%s: %w: not a directory", dir, ErrDir)
	}
	in, err := os.Open(src)
	if err != nil {
		return r, fmt.Errorf("read the running binary: %w", err)
	}
	defer in.Close()
	want, err := io.ReadAll(in)
	if err != nil {
		return r, fmt.Errorf("read the running binary: %w", err)
	}
	r.Size = int64(len(want))
	if same(r.Path, want) {
		r.Unchanged = true
		return r, nil
	}
	tmp, err := os.CreateTemp(dir, "."+Name+"-*")
	if err != nil {
		if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return r, fmt.Errorf("%s: %w: %w", dir, ErrDir, unwrapPath(err))
		}
		return r, fmt.Errorf("%s: %w", dir, unwrapPath(err))
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(want); err != nil {
		return r, fmt.Errorf("write %s: %w", tmp.Name(), unwrapPath(err))
	}
	// Fchmod, not the umask-bound mode of the create: 0755 whatever the
	// umask of the init container.
	if err := tmp.Chmod(Mode); err != nil {
		return r, fmt.Errorf("chmod %s: %w", tmp.Name(), unwrapPath(err))
	}
	if err := tmp.Sync(); err != nil {
		return r, fmt.Errorf("fsync %s: %w", tmp.Name(), unwrapPath(err))
	}
	if err := tmp.Close(); err != nil {
		return r, fmt.Errorf("close %s: %w", tmp.Name(), unwrapPath(err))
	}
	if err := os.Rename(tmp.Name(), r.Path); err != nil {
		return r, fmt.Errorf("rename to %s: %w", r.Path, unwrapPath(err))
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		_ = d.Close()
		if err != nil && !errors.Is(err, syscall.EINVAL) {
			return r, fmt.Errorf("fsync %s: %w", dir, err)
		}
	}
	return r, nil
}

// same reports whether path is a regular file of Mode holding want.
func same(path string, want []byte) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != Mode || st.Size() != int64(len(want)) {
		return false
	}
	got, err := io.ReadAll(io.LimitReader(f, int64(len(want))+1))
	return err == nil && bytes.Equal(got, want)
}

// unwrapPath drops the *PathError's op and path, which the callers' own
// text already says.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
