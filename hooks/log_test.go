package hooks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lifecycled/lifecycled/internal/proctest"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/tombstone"
)

// readJSONLines parses every line of path as a JSON object.
func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		lines = append(lines, m)
	}
	require.NoError(t, sc.Err())
	return lines
}

func TestLogLines(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)

	dir := filepath.Join(t.TempDir(), "hooks") // created by OpenLog
	logger, logs := observed()
	hl := OpenLog(dir, "app", 0, logger)
	require.NotNil(t, hl)
	r := NewRunner(testReaper, logger, hl, nil, "")

	hl.Phase(tombstone.PhaseRunning, 42)
	r.Run(context.Background(), shellHook(t, `echo "said \"hi\""; exit 2`, 5*time.Second))
	r.Run(context.Background(), Hook{Name: PostStart, HTTPURL: srv.URL + "/hook", Timeout: 5 * time.Second})
	r.Run(context.Background(), Hook{Name: PreStop, Sleep: time.Millisecond})
	require.NoError(t, hl.Close())
	hl.Phase(tombstone.PhaseExited, 42) // dropped after Close, no panic

	lines := readJSONLines(t, filepath.Join(dir, "app.hooks.log"))
	require.Len(t, lines, 4)

	phase := lines[0]
	assert.Equal(t, "phase", phase["msg"])
	assert.Equal(t, tombstone.PhaseRunning, phase["phase"])
	assert.EqualValues(t, 42, phase["pid"])
	ts, ok := phase["time"].(string)
	require.True(t, ok)
	_, err := time.Parse(time.RFC3339Nano, ts)
	assert.NoError(t, err)

	exec := lines[1]
	assert.Equal(t, PreStop, exec["hook"])
	assert.Equal(t, HandlerExec, exec["handler"])
	assert.Equal(t, `echo "said \"hi\""; exit 2`, exec["command"])
	assert.EqualValues(t, 2, exec["exit_code"])
	assert.Equal(t, "said \"hi\"\n", exec["output"])
	assert.Contains(t, exec["error"], "exit code 2")
	assert.NotContains(t, exec, "http_status")
	start, ok := exec["start_time"].(string)
	require.True(t, ok)
	parsed, err := time.Parse(time.RFC3339Nano, start)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), parsed, time.Minute)
	assert.True(t, strings.HasSuffix(start, "Z"), "start should be UTC: %s", start)
	assert.IsType(t, float64(0), exec["duration_seconds"])

	httpLine := lines[2]
	assert.Equal(t, PostStart, httpLine["hook"])
	assert.Equal(t, HandlerHTTPGet, httpLine["handler"])
	assert.Equal(t, srv.URL+"/hook", httpLine["url"])
	assert.NotContains(t, httpLine, "command")
	assert.EqualValues(t, 503, httpLine["http_status"])
	assert.Contains(t, httpLine["error"], "status 503")

	sleepLine := lines[3]
	assert.Equal(t, HandlerSleep, sleepLine["handler"])
	assert.Equal(t, "1ms", sleepLine["command"])
	assert.NotContains(t, sleepLine, "error")

	assert.Zero(t, logs.FilterMessage("hook log unavailable, carrying on without it; will retry").Len())
}

func TestLogRotates(t *testing.T) {
	dir := t.TempDir()
	const max = 2048
	hl := OpenLog(dir, "app", max, zap.NewNop())
	t.Cleanup(func() { _ = hl.Close() })
	path := filepath.Join(dir, "app.hooks.log")

	for pid := 1; pid <= 100; pid++ {
		hl.Phase(tombstone.PhaseRunning, pid)
	}
	require.True(t, hl.flush())

	cur, err := os.Stat(path)
	require.NoError(t, err)
	old, err := os.Stat(path + ".1")
	require.NoError(t, err, "no rotation at %d bytes", max)
	assert.LessOrEqual(t, cur.Size(), int64(max))
	assert.LessOrEqual(t, old.Size(), int64(max))
	assert.Greater(t, old.Size(), int64(max/2), "rotated too early")

	// The newest line is in the current file, whole lines only in both.
	curLines := readJSONLines(t, path)
	require.NotEmpty(t, curLines)
	assert.EqualValues(t, 100, curLines[len(curLines)-1]["pid"])
	oldLines := readJSONLines(t, path+".1")
	require.NotEmpty(t, oldLines)
	assert.EqualValues(t, curLines[0]["pid"].(float64)-1, oldLines[len(oldLines)-1]["pid"])

	matches, err := filepath.Glob(filepath.Join(dir, "app.hooks.log*"))
	require.NoError(t, err)
	assert.Len(t, matches, 2, "only one old file is kept")
}

func TestLogUnwritable(t *testing.T) {
	// chmod does not stop root; a directory under a regular file cannot be
	// created by anyone.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	dir := filepath.Join(file, "sub")

	logger, logs := observed()
	hl := OpenLog(dir, "app", 0, logger)
	require.NotNil(t, hl)
	r := NewRunner(testReaper, zap.NewNop(), hl, nil, "")
	proctest.Within(t, 10*time.Second, func() {
		for i := 0; i < 5; i++ {
			hl.Phase(tombstone.PhaseRunning, i)
			r.Run(context.Background(), Hook{Name: PreStop, Sleep: time.Millisecond})
		}
	})
	assert.NoError(t, hl.Close())

	warnings := logs.FilterMessage("hook log unavailable, carrying on without it; will retry").All()
	require.Len(t, warnings, 1, "report once, not per line")
	assert.Contains(t, warnings[0].ContextMap()["error"], "not a directory")
	assert.Equal(t, filepath.Join(dir, "app.hooks.log"), warnings[0].ContextMap()["path"])
}

func TestLogDirDeletedMidRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hooks")
	logger, logs := observed()
	hl := OpenLog(dir, "app", 0, logger)
	t.Cleanup(func() { _ = hl.Close() })
	path := filepath.Join(dir, "app.hooks.log")

	hl.Phase(tombstone.PhaseRunning, 1)
	require.True(t, hl.flush())
	require.Len(t, readJSONLines(t, path), 1)

	require.NoError(t, os.RemoveAll(dir))
	for pid := 2; pid <= 4; pid++ {
		hl.Phase(tombstone.PhaseDraining, pid)
	}
	require.True(t, hl.flush())
	_, err := os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "a vanished volume must not be recreated on the container's own disk")
	assert.Equal(t, 1, logs.FilterMessage("hook log unavailable, carrying on without it; will retry").Len())

	// The volume comes back: lines flow again, and it says so.
	require.NoError(t, os.Mkdir(dir, 0o755))
	hl.Phase(tombstone.PhaseExited, 5)
	require.True(t, hl.flush())
	lines := readJSONLines(t, path)
	require.Len(t, lines, 1)
	assert.EqualValues(t, 5, lines[0]["pid"])
	assert.Equal(t, 1, logs.FilterMessage("hook log writable again").Len())
	assert.Equal(t, 1, logs.FilterMessage("hook log unavailable, carrying on without it; will retry").Len())
}

func TestLogNil(t *testing.T) {
	assert.Nil(t, OpenLog("", "app", 0, zap.NewNop()), "no --hook-log-dir, no hook log")
	var hl *Log
	assert.NotPanics(t, func() {
		hl.Phase(tombstone.PhaseRunning, 1)
		hl.Hook(Result{})
		assert.NoError(t, hl.Close())
	})
}

// TestLogHostileFile: a symlink, a FIFO or /dev/zero put at NAME.hooks.log
// by another container of the pod is refused with one warning: OpenLog
// and every line return at once, nothing is written through the symlink.
func TestLogHostileFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cr3t\n"), 0o600))
	for _, tt := range []struct {
		name, want string
		make       func(path string) error
	}{
		{"symlink", "symlink", func(path string) error { return os.Symlink(secret, path) }},
		{"FIFO", "FIFO", func(path string) error { return syscall.Mkfifo(path, 0o644) }},
		{"dev null", "symlink", func(path string) error { return os.Symlink("/dev/null", path) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, tt.make(filepath.Join(dir, "app.hooks.log")))
			logger, logs := observed()
			var hl *Log
			proctest.Within(t, 5*time.Second, func() {
				hl = OpenLog(dir, "app", 0, logger)
				for i := 0; i < 5; i++ {
					hl.Phase(tombstone.PhaseRunning, i)
				}
				require.True(t, hl.flush(), "lines stuck behind the open")
				assert.NoError(t, hl.Close())
			})
			warnings := logs.FilterMessage("hook log unavailable, carrying on without it; will retry").All()
			require.Len(t, warnings, 1, "report once, not per line")
			assert.Contains(t, warnings[0].ContextMap()["error"], tt.want)
			b, err := os.ReadFile(secret)
			require.NoError(t, err)
			assert.Equal(t, "s3cr3t\n", string(b), "written through the symlink")
		})
	}
}

// TestLogMasksSecrets: an httpGet hook's URL shows no password and no value
// of a parameter named like a secret, in the hook log and on stderr, even
// with a space in its query (which ends a URL in text, so the JSON line
// showed "b S3cB").
func TestLogMasksSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	core, logs := observer.New(zap.DebugLevel)
	logger := zap.New(redact.Core(core)) // as lifecycled's stderr logger is
	hl := OpenLog(dir, "app", 0, logger)
	require.NotNil(t, hl)
	r := NewRunner(testReaper, logger, hl, nil, "")
	u := strings.Replace(srv.URL, "http://", "http://u:S3cA@", 1) + "/hook?token=b%20S3cB&x=1&password=c S3cC"
	r.Run(context.Background(), Hook{Name: PostStart, HTTPURL: u, Timeout: 5 * time.Second})
	require.NoError(t, hl.Close())
	b, err := os.ReadFile(filepath.Join(dir, "app.hooks.log"))
	require.NoError(t, err)
	var stderr strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintln(&stderr, e.Message, e.ContextMap())
	}
	for name, out := range map[string]string{"hook log": string(b), "stderr": stderr.String()} {
		assert.Contains(t, out, "/hook?token=xxxxx&x=1&password=xxxxx", name)
		for _, s := range []string{"S3cA", "S3cB", "S3cC"} {
			assert.NotContains(t, out, s, name)
		}
	}
}
