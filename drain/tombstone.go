package drain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Tombstone phases, in the order a child goes through them.
const (
	PhaseWaiting  = "waiting"
	PhaseStarting = "starting"
	PhaseRunning  = "running"
	PhaseDraining = "draining"
	PhaseExited   = "exited"
)

// DefaultWatchInterval is how often WatchExited looks at the tombstones when
// given no interval.
const DefaultWatchInterval = 250 * time.Millisecond

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
	// UpdatedAt is when the phase was written; WriteTombstone sets it to
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

// WriteTombstone writes DIR/NAME.json atomically: a reader in another
// container sees the old content or the new, never a torn file.
func WriteTombstone(dir string, t Tombstone) error {
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

// ReadTombstone reads DIR/NAME.json. A missing file is an error wrapping
// fs.ErrNotExist.
func ReadTombstone(dir, name string) (Tombstone, error) {
	if err := checkTombstoneName(name); err != nil {
		return Tombstone{}, err
	}
	path := tombstonePath(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return Tombstone{}, fmt.Errorf("read tombstone %s: %w", path, err)
	}
	var w tombstoneJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return Tombstone{}, fmt.Errorf("decode tombstone %s: %w", path, err)
	}
	t := Tombstone{Name: w.Name, Phase: w.Phase, PID: w.PID, ExitCode: w.ExitCode}
	if w.Signal != nil {
		t.Signal = *w.Signal
	}
	if w.UpdatedAt != "" {
		if t.UpdatedAt, err = time.Parse(time.RFC3339Nano, w.UpdatedAt); err != nil {
			return Tombstone{}, fmt.Errorf("decode tombstone %s: updatedAt: %w", path, err)
		}
	}
	return t, nil
}

// WatchExited blocks until every name in dir has ended, or ctx is done,
// and returns the names that died: those whose writer went away without
// writing "exited" (SIGKILL, the OOM killer). A name has ended once its
// tombstone says "exited", or once its lock (LockTombstone), seen held
// before, is free while the tombstone says anything else.
//
// Death is told by the kernel, not by clocks: the writer holds a lock for
// its whole life and the kernel drops it however the process ends, in
// whichever container of the pod it ran. A lock never seen held proves
// nothing: the writer may not have started yet (the sidecar usually starts
// first), or the tombstone is a previous run's and the writer is about to
// be restarted; so the watcher waits, as before. A missing or unreadable
// tombstone means not exited yet.
//
// It polls every `every` (DefaultWatchInterval if zero or less): a poll is
// an open, a read and an fcntl per name, microseconds, and works on every
// volume type, where inotify misses changes made from another node or
// through some network file systems. A missed wake-up would hang a Job for
// good, so a poll would be needed anyway; inotify would only cut the
// latency below the interval, which no drain delay notices.
func WatchExited(ctx context.Context, dir string, names []string, every time.Duration) (died []string, err error) {
	if every <= 0 {
		every = DefaultWatchInterval
	}
	for _, name := range names {
		if err := checkTombstoneName(name); err != nil {
			return nil, err
		}
	}
	pending := make(map[string]*watched, len(names))
	for _, name := range names {
		pending[name] = &watched{}
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
	seenAlive bool // its lock was once seen held
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
	held, lockErr := TombstoneLocked(dir, name)
	t, err := ReadTombstone(dir, name)
	switch {
	case err == nil && t.Phase == PhaseExited:
		return endExited
	case lockErr != nil: // no lock file: not started, or an older writer
		return endNone
	case held:
		w.seenAlive = true
		return endNone
	case w.seenAlive:
		return endDied
	}
	return endNone
}

// TombstoneLock is held by the writer of a tombstone for as long as it
// lives (LockTombstone).
type TombstoneLock struct {
	f *os.File
}

// LockTombstone takes the lock DIR/NAME.lock that tells watchers NAME's
// writer is alive. Call it before the first WriteTombstone and keep it for
// the life of the process: the kernel releases it when the process dies,
// even by SIGKILL, and WatchExited takes a free lock under a tombstone
// that does not say "exited" for a death.
//
// The lock is an open file description lock (fcntl F_OFD_SETLK) on a file
// of its own: the tombstone itself is replaced by rename at every write,
// so a lock on it would be left on an unlinked inode. Watchers test it
// with F_OFD_GETLK, which takes nothing, so a watcher never makes a writer
// fail to lock. OFD locks work across the containers of a pod (one kernel,
// one inode on the shared emptyDir) and on NFS (as POSIX locks). Closing
// file descriptors elsewhere in the process does not drop them, unlike
// classic POSIX locks, and they are not inherited across exec.
func LockTombstone(dir, name string) (*TombstoneLock, error) {
	if err := checkTombstoneName(name); err != nil {
		return nil, err
	}
	path := lockPath(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock tombstone %s: %w", path, err)
	}
	// A watcher in another container usually runs as another user and
	// must be able to open the file to test the lock, whatever the umask.
	_ = f.Chmod(0o644)
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("lock tombstone %s: held by another process (another container with --name %s?)", path, name)
		}
		return nil, fmt.Errorf("lock tombstone %s: %w", path, err)
	}
	return &TombstoneLock{f: f}, nil
}

// Close releases the lock. The file stays: removing it could race a new
// writer that already opened it.
func (l *TombstoneLock) Close() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}

// TombstoneLocked reports whether NAME's writer holds DIR/NAME.lock. It
// takes no lock itself. A missing lock file is an error wrapping
// fs.ErrNotExist.
func TombstoneLocked(dir, name string) (bool, error) {
	if err := checkTombstoneName(name); err != nil {
		return false, err
	}
	path := lockPath(dir, name)
	f, err := os.Open(path)
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
// renames it over path: rename is atomic only within one file system.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes 0600 files; a neighbour container usually runs as
	// another user and must be able to read.
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
