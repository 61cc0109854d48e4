// Package tombstone holds the --tombstone-dir file through which the
// containers of one pod see each other's phase: an explicit wire format,
// written atomically, the lock that tells a death from a slow writer, and
// the watch behind --exit-with.
package tombstone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/lifecycled/lifecycled/internal/sharedfile"
)

// Phases of a supervised child, in the order it goes through them: the
// tombstone's phase, lifecycled_phase's label and the hook log's phase
// lines all use these names.
const (
	PhaseWaiting  = "waiting"
	PhaseStarting = "starting"
	PhaseRunning  = "running"
	PhaseDraining = "draining"
	PhaseExited   = "exited"
)

// Phases returns every phase, in order.
func Phases() []string {
	return []string{PhaseWaiting, PhaseStarting, PhaseRunning, PhaseDraining, PhaseExited}
}

// defaultWatchInterval is how often WatchExited looks at the tombstones when
// given no interval.
const defaultWatchInterval = 250 * time.Millisecond

// Tombstone is the --tombstone-dir file DIR/NAME.json, through which
// containers of one pod see each other's phase (the Job-with-sidecar case).
type Tombstone struct {
	// Name is the supervised child's name (--name).
	Name string
	// Phase is one of the Phase constants.
	Phase string
	// PID is the child's pid, 0 before it starts.
	PID int
	// ExitCode is the child's exit status, nil until it has exited.
	ExitCode *int
	// Signal names the signal that killed the child ("SIGKILL"), empty if
	// none did.
	Signal string
	// UpdatedAt is when the phase was written; Write sets it to
	// now if zero.
	UpdatedAt time.Time
}

// tombstoneJSON fixes the wire format independently of the Go names, with
// exitCode and signal null until the child has exited.
type tombstoneJSON struct {
	Name      string  `json:"name"`
	Phase     string  `json:"phase"`
	PID       int     `json:"pid"`
	ExitCode  *int    `json:"exitCode"`
	Signal    *string `json:"signal"`
	UpdatedAt string  `json:"updatedAt"`
}

// Write writes DIR/NAME.json atomically: a reader in another
// container sees the old content or the new, never a torn file.
func Write(dir string, t Tombstone) error {
	if err := checkTombstoneName(t.Name); err != nil {
		return err
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = time.Now()
	}
	w := tombstoneJSON{
		Name:      t.Name,
		Phase:     t.Phase,
		PID:       t.PID,
		ExitCode:  t.ExitCode,
		UpdatedAt: t.UpdatedAt.UTC().Format(time.RFC3339Nano),
	}
	if t.Signal != "" {
		w.Signal = &t.Signal
	}
	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode tombstone %s: %w", t.Name, err)
	}
	data = append(data, '\n')
	path := tombstonePath(dir, t.Name)
	if err := writeFileAtomic(path, data); err != nil {
		return fmt.Errorf("write tombstone %s: %w", path, err)
	}
	return nil
}

// maxTombstoneBytes bounds a read of a neighbour's tombstone: a real one
// is about 150 bytes, and whatever else sits at NAME.json (a symlink to
// /dev/zero, a file that grows) must cost a few KiB at most.
const maxTombstoneBytes = 4 << 10

// read reads DIR/NAME.json. A missing file is an error wrapping
// fs.ErrNotExist; a symlink, FIFO or device there is an error wrapping
// sharedfile.ErrNotRegular.
func read(dir, name string) (Tombstone, error) {
	t, _, err := readRaw(dir, name)
	return t, err
}

// readRaw is read, also returning the bytes read (nil if none could be).
func readRaw(dir, name string) (Tombstone, []byte, error) {
	if err := checkTombstoneName(name); err != nil {
		return Tombstone{}, nil, err
	}
	path := tombstonePath(dir, name)
	data, err := sharedfile.ReadFile(path, maxTombstoneBytes)
	if err != nil {
		return Tombstone{}, nil, fmt.Errorf("read tombstone %s: %w", path, err)
	}
	var w tombstoneJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return Tombstone{}, data, fmt.Errorf("decode tombstone %s: %w", path, err)
	}
	t := Tombstone{Name: w.Name, Phase: w.Phase, PID: w.PID, ExitCode: w.ExitCode}
	if w.Signal != nil {
		t.Signal = *w.Signal
	}
	if w.UpdatedAt != "" {
		if t.UpdatedAt, err = time.Parse(time.RFC3339Nano, w.UpdatedAt); err != nil {
			return Tombstone{}, data, fmt.Errorf("decode tombstone %s: updatedAt: %w", path, err)
		}
	}
	return t, data, nil
}

// WatchExited blocks until every name in dir has ended, or ctx is done,
// and returns the names that died: those whose writer went away without
// writing "exited" (SIGKILL, the OOM killer). A name has ended once its
// tombstone says "exited", or once its lock (AcquireLock) is free while
// the tombstone says anything else and a writer is known to have lived
// since the watch began: its lock was seen held, or its tombstone was seen
// to differ from what the watch's first look found.
//
// Death is told by the kernel, not by clocks: the writer holds a lock for
// its whole life and the kernel drops it however the process ends, in
// whichever container of the pod it ran. A free lock alone proves nothing:
// the writer may not have started yet (the sidecar usually starts first),
// or the tombstone is a previous run's and the writer is about to be
// restarted; so the watcher waits. But a writer killed in its first
// moments may hold its lock only between two polls; the tombstone it wrote
// meanwhile is the proof it lived, since a tombstone is only ever written
// under its lock. Every write carries a new updatedAt, so its bytes differ
// from any earlier tombstone's. The change must have been read before the
// free lock is seen (an earlier poll): read after it, it could be the first
// write of a writer that took the lock just after the test. A missing or
// unreadable tombstone means not exited yet; one that is not a regular
// file (a FIFO, a symlink, a device) is reported once on logger and read
// no further.
//
// It polls every `every` (defaultWatchInterval if zero or less): a poll is
// an open, a read and an fcntl per name, microseconds, and works on every
// volume type, where inotify misses changes made from another node or
// through some network file systems. A missed wake-up would hang a Job for
// good, so a poll would be needed anyway; inotify would only cut the
// latency below the interval, which no drain delay notices.
func WatchExited(ctx context.Context, dir string, names []string, every time.Duration, logger *zap.Logger) (died []string, err error) {
	if every <= 0 {
		every = defaultWatchInterval
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	for _, name := range names {
		if err := checkTombstoneName(name); err != nil {
			return nil, err
		}
	}
	pending := make(map[string]*watched, len(names))
	for _, name := range names {
		pending[name] = &watched{logger: logger.With(zap.String("exit_with", name))}
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		for _, name := range names {
			w, ok := pending[name]
			if !ok {
				continue
			}
			switch w.look(dir, name) {
			case endExited:
				delete(pending, name)
			case endDied:
				delete(pending, name)
				died = append(died, name)
			}
		}
		if len(pending) == 0 {
			return died, nil
		}
		select {
		case <-ctx.Done():
			var left []string
			for _, name := range names {
				if _, ok := pending[name]; ok {
					left = append(left, name)
				}
			}
			return died, fmt.Errorf("wait for %s to exit: %w", strings.Join(left, ", "), ctx.Err())
		case <-ticker.C:
		}
	}
}

// watched is what WatchExited knows of one name.
type watched struct {
	logger    *zap.Logger
	looked    bool   // the first look is done
	baseline  []byte // the tombstone's bytes at the first look, nil if none
	seenAlive bool   // its lock was once seen held
	changed   bool   // a tombstone other than the baseline was read
	refused   bool   // a refused file was reported and not yet replaced
}

type ending int

const (
	endNone ending = iota
	endExited
	endDied
)

// look reads name's lock, then its tombstone. The order matters: the
// writer writes "exited" before its lock goes, so a tombstone read after
// the lock was seen free holds the writer's last word.
func (w *watched) look(dir, name string) ending {
	changedBefore := w.changed
	held, lockErr := locked(dir, name)
	t, data, err := readRaw(dir, name)
	w.report(err, lockErr)
	if !w.looked {
		w.looked, w.baseline = true, data
		w.logger.Debug("watching tombstone", zap.Bool("tombstone_found", data != nil),
			zap.String("phase", t.Phase), zap.Bool("lock_held", held))
	} else if data != nil && !bytes.Equal(data, w.baseline) {
		w.changed = true
	}
	switch {
	case err == nil && t.Phase == PhaseExited:
		return endExited
	case lockErr != nil: // no lock file: not started, or an older writer
		return endNone
	case held:
		w.seenAlive = true
		return endNone
	case w.seenAlive || changedBefore:
		return endDied
	}
	return endNone
}

// report logs, once until it goes, a tombstone or lock that is refused
// rather than read: something other than lifecycled put it there.
func (w *watched) report(errs ...error) {
	for _, err := range errs {
		if errors.Is(err, sharedfile.ErrNotRegular) || errors.Is(err, sharedfile.ErrTooLong) {
			if !w.refused {
				w.refused = true
				w.logger.Warn("refusing a file in the tombstone directory; waiting for a real tombstone", zap.Error(err))
			}
			return
		}
	}
	w.refused = false
}

// Lock is held by the writer of a tombstone for as long as it
// lives (AcquireLock).
type Lock struct {
	f *os.File
}

// HeldError is AcquireLock's error when another process holds the lock:
// another container, or another lifecycled, runs with the same --name.
type HeldError struct {
	Path string
	// PID is the holder's pid as it wrote it in the lock file (in its own
	// PID namespace), 0 if unknown.
	PID int
}

func (e *HeldError) Error() string {
	holder := "another process (pid unknown)"
	if e.PID > 0 {
		holder = "pid " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("tombstone lock %s is held by %s: another lifecycled runs with the same --name", e.Path, holder)
}

// maxLockBytes bounds the read of the holder's pid from a lock file.
const maxLockBytes = 64

// AcquireLock takes the lock DIR/NAME.lock that tells watchers NAME's
// writer is alive, and writes the caller's pid into it for whoever finds
// it held. Call it before the first Write, never Write without it, and
// keep it for the life of the process: the kernel releases it when the
// process dies, even by SIGKILL, and WatchExited takes a free lock under a
// tombstone that does not say "exited" for a death. When another process
// holds it, the error is a *HeldError.
//
// The lock is an open file description lock (fcntl F_OFD_SETLK) on a file
// of its own: the tombstone itself is replaced by rename at every write,
// so a lock on it would be left on an unlinked inode. Watchers test it
// with F_OFD_GETLK, which takes nothing, so a watcher never makes a writer
// fail to lock. OFD locks work across the containers of a pod (one kernel,
// one inode on the shared emptyDir) and on NFS (as POSIX locks). Closing
// file descriptors elsewhere in the process does not drop them, unlike
// classic POSIX locks, and they are not inherited across exec. F_OFD_GETLK
// reports no pid for an OFD lock (l_pid is -1), hence the pid in the file.
func AcquireLock(dir, name string) (*Lock, error) {
	if err := checkTombstoneName(name); err != nil {
		return nil, err
	}
	path := lockPath(dir, name)
	f, created, err := sharedfile.Open(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock tombstone %s: %w", path, err)
	}
	if created {
		// A watcher in another container usually runs as another user
		// and must be able to open the file to test the lock, whatever
		// the umask. Only a file this call created: never someone else's.
		_ = f.Chmod(0o644)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, &HeldError{Path: path, PID: holderPID(f)}
		}
		return nil, fmt.Errorf("lock tombstone %s: %w", path, err)
	}
	// Best effort: the lock works without it, only the message of a
	// second writer loses the pid.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// holderPID reads the pid the holder of f's lock wrote, 0 if none.
func holderPID(f *os.File) int {
	b, err := io.ReadAll(io.LimitReader(f, maxLockBytes))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Close releases the lock. The file stays: removing it could race a new
// writer that already opened it.
func (l *Lock) Close() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}

// locked reports whether NAME's writer holds DIR/NAME.lock. It
// takes no lock itself. A missing lock file is an error wrapping
// fs.ErrNotExist.
func locked(dir, name string) (bool, error) {
	if err := checkTombstoneName(name); err != nil {
		return false, err
	}
	path := lockPath(dir, name)
	f, _, err := sharedfile.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return false, fmt.Errorf("test tombstone lock %s: %w", path, err)
	}
	defer f.Close()
	// F_WRLCK as the probe: any lock of the writer conflicts with it.
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("test tombstone lock %s: %w", path, err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

func lockPath(dir, name string) string {
	return filepath.Join(dir, name+".lock")
}

func tombstonePath(dir, name string) string {
	return filepath.Join(dir, name+".json")
}

func checkTombstoneName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("tombstone name %q: must be a plain file name", name)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file in path's directory and
// renames it over path: rename is atomic only within one file system, and
// replaces whatever was at path (a symlink too) without following it.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	// A file this process just created, changed through its descriptor:
	// the umask may have narrowed it, and a neighbour container usually
	// runs as another user and must be able to read.
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	// Without the fsync a crash after the rename could leave an empty
	// file under the final name.
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// createTemp creates a new file dir/prefix<random>, O_EXCL and O_NOFOLLOW:
// a name someone else prepared (a symlink, a FIFO) is never opened.
func createTemp(dir, prefix string) (*os.File, error) {
	var err error
	for range 100 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		var f *os.File
		f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o644)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	return nil, err
}

// syncDir makes the rename itself durable. Some file systems refuse to
// fsync a directory; the file is in place either way, so that is ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
