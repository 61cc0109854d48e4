// Package sharedfile opens the files lifecycled keeps in directories other
// containers share (--tombstone-dir, --hook-log-dir). Whoever else writes
// there may put a symlink, a FIFO or a device where lifecycled expects its
// file; lifecycled usually runs as root, so following the symlink would
// chmod or append to any file of its container, a FIFO would block the open
// for good, and /dev/zero would be read until memory runs out. So every
// open here refuses a symlink at the last component (O_NOFOLLOW), never
// waits (O_NONBLOCK: a FIFO opens at once, then is refused), and keeps only
// a regular file with one link.
package sharedfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is wrapped by Open's error when the path holds a symlink,
// a FIFO, a device, a directory, a socket or a file with other hard links.
var ErrNotRegular = errors.New("not a regular file of its own")

// ErrTooLong is wrapped by ReadFile's error when the file holds more than
// it may read.
var ErrTooLong = errors.New("longer than expected")

// Open opens path with flag (os.O_RDONLY, os.O_RDWR, os.O_WRONLY|os.O_APPEND,
// with or without os.O_CREATE) as the package says, and reports whether
// this call created the file: only a file it created may be chmod'ed
// (through the returned *os.File, never through the path).
func Open(path string, flag int, perm fs.FileMode) (f *os.File, created bool, err error) {
	flag |= syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC
	if flag&os.O_CREATE != 0 {
		// O_EXCL first: the only way to know the file is this call's.
		f, err = os.OpenFile(path, flag|os.O_EXCL, perm)
		created = err == nil
		if errors.Is(err, fs.ErrExist) {
			f, err = os.OpenFile(path, flag&^os.O_CREATE, 0)
		}
	} else {
		f, err = os.OpenFile(path, flag, 0)
	}
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, false, fmt.Errorf("open %s: a symlink: %w", path, ErrNotRegular)
		}
		// A FIFO opened for writing with no reader fails (ENXIO) before
		// it can be looked at: say what is there rather than errno's name.
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil, false, fmt.Errorf("open %s: %s: %w", path, kind(fi.Mode()), ErrNotRegular)
		}
		return nil, false, err
	}
	if err := checkRegular(f); err != nil {
		_ = f.Close()
		return nil, false, fmt.Errorf("open %s: %w", path, err)
	}
	return f, created, nil
}

// checkRegular refuses what f is if it is not a regular file with one
// link (a hard link would make an append or a write land in someone
// else's file just as a symlink would).
func checkRegular(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w", kind(fi.Mode()), ErrNotRegular)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return fmt.Errorf("a file with %d hard links: %w", st.Nlink, ErrNotRegular)
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeDir != 0:
		return "a directory"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// ReadFile reads path, opened as Open does, and at most max bytes of it: a
// longer file is an error, never a larger buffer.
func ReadFile(path string, max int64) ([]byte, error) {
	f, _, err := Open(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("read %s: more than %d bytes: %w", path, max, ErrTooLong)
	}
	return data, nil
}
