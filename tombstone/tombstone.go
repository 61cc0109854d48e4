// Package tombstone holds the --tombstone-dir file through which the
// containers of one pod see each other's phase: an explicit wire format,
// written atomically, and the watch behind --exit-with.
package tombstone

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
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

// read reads DIR/NAME.json. A missing file is an error wrapping
// fs.ErrNotExist.
func read(dir, name string) (Tombstone, error) {
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

// WatchExited blocks until the tombstone of every name in dir says
// "exited", or ctx is done. A missing or unreadable tombstone means not
// exited yet: the other container may not have started. It polls every
// `every` (defaultWatchInterval if zero or less); polling works on every
// volume type, where inotify misses changes made from another node or
// through some overlay and network file systems.
func WatchExited(ctx context.Context, dir string, names []string, every time.Duration) error {
	if every <= 0 {
		every = defaultWatchInterval
	}
	for _, name := range names {
		if err := checkTombstoneName(name); err != nil {
			return err
		}
	}
	pending := append([]string(nil), names...)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		pending = stillRunning(dir, pending)
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to exit: %w", strings.Join(pending, ", "), ctx.Err())
		case <-ticker.C:
		}
	}
}

// stillRunning returns the names whose tombstone does not say exited. Once
// exited, a name is not read again: a restarted neighbour writing
// "starting" must not undo an exit already seen.
func stillRunning(dir string, names []string) []string {
	var pending []string
	for _, name := range names {
		t, err := read(dir, name)
		if err != nil || t.Phase != PhaseExited {
			pending = append(pending, name)
		}
	}
	return pending
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
