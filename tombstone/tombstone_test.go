package tombstone

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/proctest"
)

func intPtr(i int) *int { return &i }

func TestTombstoneRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 0, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		name     string
		in       Tombstone
		wantJSON map[string]any
	}{
		{
			name: "running",
			in:   Tombstone{Name: "app", Phase: PhaseRunning, PID: 7, UpdatedAt: at},
			wantJSON: map[string]any{
				"name": "app", "phase": "running", "pid": 7.0,
				"exitCode": nil, "signal": nil, "updatedAt": "2026-03-01T11:30:00.123456789Z",
			},
		},
		{
			name: "exited by itself",
			in:   Tombstone{Name: "job", Phase: PhaseExited, PID: 7, ExitCode: intPtr(0), UpdatedAt: at},
			wantJSON: map[string]any{
				"name": "job", "phase": "exited", "pid": 7.0,
				"exitCode": 0.0, "signal": nil, "updatedAt": "2026-03-01T11:30:00.123456789Z",
			},
		},
		{
			name: "killed",
			in:   Tombstone{Name: "job", Phase: PhaseExited, PID: 7, ExitCode: intPtr(137), Signal: "SIGKILL", UpdatedAt: at},
			wantJSON: map[string]any{
				"name": "job", "phase": "exited", "pid": 7.0,
				"exitCode": 137.0, "signal": "SIGKILL", "updatedAt": "2026-03-01T11:30:00.123456789Z",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, Write(dir, tt.in))

			data, err := os.ReadFile(filepath.Join(dir, tt.in.Name+".json"))
			require.NoError(t, err)
			var raw map[string]any
			require.NoError(t, json.Unmarshal(data, &raw))
			assert.Equal(t, tt.wantJSON, raw)

			got, err := read(dir, tt.in.Name)
			require.NoError(t, err)
			assert.Equal(t, tt.in.Name, got.Name)
			assert.Equal(t, tt.in.Phase, got.Phase)
			assert.Equal(t, tt.in.PID, got.PID)
			assert.Equal(t, tt.in.ExitCode, got.ExitCode)
			assert.Equal(t, tt.in.Signal, got.Signal)
			assert.True(t, tt.in.UpdatedAt.Equal(got.UpdatedAt))

			fi, err := os.Stat(filepath.Join(dir, tt.in.Name+".json"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), "neighbour containers run as other users")
		})
	}
}

func TestTombstoneDefaultsUpdatedAt(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir, Tombstone{Name: "app", Phase: PhaseWaiting}))
	got, err := read(dir, "app")
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), got.UpdatedAt, time.Minute)
	assert.Equal(t, time.UTC, got.UpdatedAt.Location())
}

func TestTombstoneErrors(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", ".", "..", "a/b"} {
		assert.Error(t, Write(dir, Tombstone{Name: name, Phase: PhaseRunning}), "name %q", name)
		_, err := read(dir, name)
		assert.Error(t, err, "name %q", name)
	}

	_, err := read(dir, "missing")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "torn.json"), []byte(`{"name":"torn","pha`), 0o644))
	_, err = read(dir, "torn")
	assert.ErrorContains(t, err, "decode tombstone")

	err = Write(filepath.Join(dir, "no", "such"), Tombstone{Name: "app", Phase: PhaseRunning})
	assert.ErrorContains(t, err, "write tombstone")
}

// A reader polling the tombstone while it is rewritten must never see a
// torn or empty file; a plain truncate-and-write fails this quickly.
func TestTombstoneAtomic(t *testing.T) {
	dir := t.TempDir()
	// A long signal name makes the file big enough for a torn read to
	// show, and still below what a reader takes (maxTombstoneBytes).
	long := strings.Repeat("x", maxTombstoneBytes-256)
	require.NoError(t, Write(dir, Tombstone{Name: "app", Phase: PhaseRunning, Signal: long}))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, bad int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := read(dir, "app"); err != nil {
				bad++
			}
			reads++
		}
	}()
	phases := []string{PhaseRunning, PhaseDraining}
	for i := 0; i < 300; i++ {
		require.NoError(t, Write(dir, Tombstone{Name: "app", Phase: phases[i%2], PID: i, Signal: long}))
	}
	close(stop)
	wg.Wait()

	assert.Positive(t, reads)
	assert.Zero(t, bad, "torn reads out of %d", reads)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "temporary files left behind")
	assert.Equal(t, "app.json", entries[0].Name())
}

func TestWatchExited(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir, Tombstone{Name: "a", Phase: PhaseRunning}))

	result := make(chan error, 1)
	go func() {
		died, err := WatchExited(context.Background(), dir, []string{"a", "b"}, 10*time.Millisecond, nil)
		assert.Empty(t, died, "no lock files: nobody can be seen to die")
		result <- err
	}()
	stillWaiting := func(what string) {
		select {
		case err := <-result:
			t.Fatalf("returned %v while %s", err, what)
		case <-time.After(100 * time.Millisecond):
		}
	}

	stillWaiting("a runs and b is missing")
	require.NoError(t, Write(dir, Tombstone{Name: "a", Phase: PhaseExited, ExitCode: intPtr(0)}))
	stillWaiting("b is missing")
	require.NoError(t, Write(dir, Tombstone{Name: "b", Phase: PhaseDraining}))
	stillWaiting("b drains")
	// An exit once seen stays seen, even if a restarted a says otherwise.
	require.NoError(t, Write(dir, Tombstone{Name: "a", Phase: PhaseStarting}))
	require.NoError(t, Write(dir, Tombstone{Name: "b", Phase: PhaseExited, ExitCode: intPtr(1)}))

	select {
	case err := <-result:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("WatchExited did not return after both exited")
	}
}

func TestWatchExitedContext(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir, Tombstone{Name: "a", Phase: PhaseExited}))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()

	var err error
	took := proctest.Within(t, 5*time.Second, func() { _, err = WatchExited(ctx, dir, []string{"a", "sidecar"}, 0, nil) })
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "wait for sidecar to exit")
	assert.GreaterOrEqual(t, took, 150*time.Millisecond)

	_, err = WatchExited(context.Background(), dir, []string{"../etc"}, 0, nil)
	assert.Error(t, err)
	_, err = WatchExited(context.Background(), dir, nil, 0, nil)
	assert.NoError(t, err, "nothing to wait for")
}
