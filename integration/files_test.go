package integration

// Files on shared volumes: the hook log, the termination log, tombstones,
// --exit-with and --on-exit-post (contract section 6).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/proctest"
)

// TestFilesHookLog: NAME.hooks.log holds one JSON line per hook run, with
// the fields of contract section 6, and one per phase change.
func TestFilesHookLog(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "hooks")
	preStop := newFlipServer(t, http.StatusOK)
	// 100 KB of output: the log keeps the first 4 KiB.
	postStart := `head -c 100000 /dev/zero | tr '\0' x; echo; : > ` + filepath.Join(dir, "poststart-done")
	p := startTrapping(t, ctx, dir, "--hook-log-dir", logDir, "--name", "web",
		"--post-start", postStart, "--pre-stop-http", preStop.URL+"/prestop")
	// A stop during postStart would cancel it: stop once it is logged.
	logPath := filepath.Join(logDir, "web.hooks.log")
	require.NoError(t, poll(ctx, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), `"hook":"postStart"`)
	}))
	res, _ := p.terminate(ctx)
	require.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)

	recs := readJSONLines(t, logPath)
	var hooks []map[string]any
	var phases []string
	for _, r := range recs {
		assert.NotEmpty(t, r["time"], "line without time: %v", r)
		switch {
		case r["hook"] != nil:
			hooks = append(hooks, r)
		case r["phase"] != nil:
			phases = append(phases, r["phase"].(string))
		default:
			t.Errorf("line is neither a hook run nor a phase change: %v", r)
		}
	}
	assert.Equal(t, []string{"waiting", "starting", "running", "draining", "exited"}, phases)
	require.Len(t, hooks, 2, "one line per hook run")

	ps := hooks[0]
	assert.Equal(t, "postStart", ps["hook"])
	assert.Equal(t, "exec", ps["handler"])
	assert.Equal(t, postStart, ps["command"])
	assert.Equal(t, 0.0, ps["exit_code"], "exit code of a hook that succeeded: %v", ps)
	assert.Nil(t, ps["error"])
	out, _ := ps["output"].(string)
	assert.LessOrEqual(t, len(out), 4096, "output not cut to 4 KiB")
	assert.True(t, strings.HasPrefix(out, "xxxxxxxx"), "output %.40q", out)
	checkStartAndDuration(t, ps)

	pre := hooks[1]
	assert.Equal(t, "preStop", pre["hook"])
	assert.Equal(t, "httpGet", pre["handler"])
	assert.Equal(t, preStop.URL+"/prestop", pre["url"])
	assert.Equal(t, 200.0, pre["http_status"])
	assert.Nil(t, pre["error"])
	checkStartAndDuration(t, pre)
}

// TestFilesHookLogFailure: a failed hook's line carries its exit code and
// error.
func TestFilesHookLogFailure(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	p := startTrapping(t, ctx, dir, "--hook-log-dir", dir, "--name", "app",
		"--pre-stop", "echo going down; exit 4")
	res, _ := p.terminate(ctx)
	require.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)

	var hook map[string]any
	for _, r := range readJSONLines(t, filepath.Join(dir, "app.hooks.log")) {
		if r["hook"] != nil {
			require.Nil(t, hook, "two hook lines")
			hook = r
		}
	}
	require.NotNil(t, hook)
	assert.Equal(t, "preStop", hook["hook"])
	assert.Equal(t, 4.0, hook["exit_code"])
	assert.Equal(t, "going down\n", hook["output"])
	assert.Contains(t, hook["error"], "exit code 4")
}

// TestFilesHookLogUnwritable: a hook log directory that cannot be created is
// reported once and the run carries on.
func TestFilesHookLogUnwritable(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	regular := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(regular, nil, 0o644))
	hookOut := filepath.Join(dir, "poststart")
	p := start(t, options{env: quickExit()}, append([]string{"--hook-log-dir", filepath.Join(regular, "hooks"),
		"--post-start", "touch " + hookOut, "--pre-stop-http", newFlipServer(t, http.StatusOK).URL, "--"},
		childTrapsTerm(dir)...)...)
	require.NotNil(t, p)
	require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
	require.NoError(t, waitFile(ctx, hookOut))
	res, _ := p.terminate(ctx)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	assert.FileExists(t, filepath.Join(dir, "term"))

	n := 0
	for _, l := range lines(res.stderr) {
		if strings.Contains(l, filepath.Join(regular, "hooks")) && !strings.Contains(l, `"msg":"starting"`) {
			n++ // the start-up line names it among the settings: not a report
		}
	}
	assert.Equal(t, 1, n, "want the hook log directory reported once:\n%s", res.stderr)
	assert.Empty(t, causeLines(res.stderr))
}

// TestFilesTerminationLog: --termination-log says why the container ended,
// in at most 4096 bytes.
func TestFilesTerminationLog(t *testing.T) {
	t.Parallel()
	failingHook := newFlipServer(t, http.StatusInternalServerError)
	closed := fmt.Sprintf("tcp://127.0.0.1:%d", loopbackPort(t))
	var many []string // more dependencies than 4096 bytes can name
	for i := range 60 {
		many = append(many, "--wait", fmt.Sprintf("file:///nonexistent/%s/%03d", strings.Repeat("d", 80), i))
	}
	for _, tc := range []struct {
		name  string
		args  []string
		stop  bool // send SIGTERM once the child is ready
		code  int
		wants []string
	}{
		{"exit by itself", []string{"--", "sh", "-c", "exit 3"}, false, 3,
			[]string{"exit", "3", "(phase running)"}},
		{"killed at the grace period", []string{"--grace-period", "500ms", "--", "sh", "-c",
			`trap '' TERM; : > "$READY"; sleep 30`}, true, 137, []string{"SIGKILL", "grace", "(phase draining)"}},
		{"postStart failed", []string{"--post-start-http", failingHook.URL + "/hook", "--", "sh", "-c",
			`: > "$READY"; sleep 3`}, false, 125, []string{"postStart", failingHook.URL + "/hook", "500", "(phase starting)"}},
		{"dependency timeout", []string{"--wait", closed, "--wait-timeout", "500ms", "--", "true"}, false, 124,
			[]string{closed, "dependenc", "(phase waiting)"}},
		{"long reason", append(many, "--wait-timeout", "300ms", "--", "true"), false, 124,
			[]string{"/nonexistent/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 20*time.Second)
			dir := t.TempDir()
			termLog := filepath.Join(dir, "termination-log")
			ready := filepath.Join(dir, "ready")
			p := start(t, options{env: append(quickExit(), "READY="+ready)}, append([]string{"--termination-log", termLog}, tc.args...)...)
			require.NotNil(t, p)
			if tc.stop {
				require.NoError(t, waitFile(ctx, ready))
				require.NoError(t, p.signal(ctx, syscall.SIGTERM))
			}
			res := p.wait(ctx)
			assert.Equal(t, tc.code, res.code, "stderr:\n%s", res.stderr)
			b, err := os.ReadFile(termLog)
			require.NoError(t, err, "no termination log")
			t.Logf("termination log: %s", b)
			assert.LessOrEqual(t, len(b), 4096)
			assert.NotEmpty(t, b)
			for _, w := range tc.wants {
				assert.Contains(t, string(b), w)
			}
			if tc.code > 2 && tc.code != 124 && tc.code != 125 && tc.code < 128 {
				assert.Contains(t, string(b), fmt.Sprint(tc.code), "the exit code")
			}
		})
	}
}

// TestFilesTombstonePhases: NAME.json goes through waiting, starting,
// running, draining and exited, and ends with the exit code and signal.
func TestFilesTombstonePhases(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	stones := filepath.Join(dir, "tombstones")
	port := loopbackPort(t)
	listenAfter(t, port, 400*time.Millisecond)

	p := start(t, options{env: quickExit()}, append([]string{"--tombstone-dir", stones, "--wait", fmt.Sprintf("tcp://127.0.0.1:%d", port),
		"--post-start", "sleep 0.5", "--drain-delay", "500ms", "--"}, childTrapsTerm(dir)...)...)
	require.NotNil(t, p)
	path := filepath.Join(stones, "sh.json") // the default name: COMMAND's base name
	w := watchTombstone(t, path)
	require.NoError(t, poll(ctx, func() bool { return w.last().Phase == "running" }))
	running := w.last()
	assert.Positive(t, running.PID)
	assert.Nil(t, running.ExitCode)
	res, _ := p.terminate(ctx)
	require.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	require.NoError(t, poll(ctx, func() bool { return w.last().Phase == "exited" }))

	assert.Equal(t, []string{"waiting", "starting", "running", "draining", "exited"}, w.phases())
	end := w.last()
	assert.Equal(t, "sh", end.Name)
	assert.Equal(t, running.PID, end.PID)
	if assert.NotNil(t, end.ExitCode) {
		assert.Equal(t, 0, *end.ExitCode)
	}
	assert.Nil(t, end.Signal)
	updated, err := time.Parse(time.RFC3339Nano, end.UpdatedAt)
	assert.NoError(t, err, "updatedAt %q", end.UpdatedAt)
	assert.WithinDuration(t, time.Now(), updated, 10*time.Second)
	entries, _ := os.ReadDir(stones)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"sh.json", "sh.lock"}, names, "the tombstone and its lock, no temporary file")
}

// TestFilesTombstoneKilled: --name overrides the name; a child killed by a
// signal leaves its exit code and signal.
func TestFilesTombstoneKilled(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	dir := t.TempDir()
	res := runQuick(t, ctx, "--tombstone-dir", dir, "--name", "worker", "--", "sh", "-c", "kill -KILL $$")
	assert.Equal(t, 137, res.code, "stderr:\n%s", res.stderr)
	assert.NoFileExists(t, filepath.Join(dir, "sh.json"))
	b, err := os.ReadFile(filepath.Join(dir, "worker.json"))
	require.NoError(t, err)
	var ts tombstoneFile
	require.NoError(t, json.Unmarshal(b, &ts), "%s", b)
	assert.Equal(t, "worker", ts.Name)
	assert.Equal(t, "exited", ts.Phase)
	if assert.NotNil(t, ts.ExitCode) {
		assert.Equal(t, 137, *ts.ExitCode)
	}
	if assert.NotNil(t, ts.Signal) {
		assert.Equal(t, "SIGKILL", *ts.Signal)
	}
}

// TestFilesExitWith: a sidecar run with --exit-with stops once the main
// container's tombstone says exited (the Job-with-sidecar case).
func TestFilesExitWith(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	stones := filepath.Join(dir, "tombstones")
	sidecarDir := filepath.Join(dir, "sidecar")
	sidecar := startSidecar(t, ctx, stones, sidecarDir)

	job := start(t, options{env: quickExit()}, "--tombstone-dir", stones, "--name", "job", "--", "sh", "-c", "sleep 1; exit 0")
	require.NotNil(t, job)
	select { // whichever ends first
	case <-sidecar.done:
		t.Error("the sidecar stopped while the job still ran")
	case <-job.done:
	case <-ctx.Done():
	}
	jobRes := job.wait(ctx)
	require.Equal(t, 0, jobRes.code, "job stderr:\n%s", jobRes.stderr)
	jobDone := time.Now()

	res := sidecar.wait(ctx)
	assert.Equal(t, 0, res.code, "sidecar stderr:\n%s", res.stderr)
	assert.Less(t, time.Since(jobDone), 3*time.Second, "the sidecar did not stop soon after the job")
	assert.FileExists(t, filepath.Join(sidecarDir, "term"), "the sidecar's child was not stopped with SIGTERM")
	ts, err := readTombstoneFile(filepath.Join(stones, "proxy.json"))
	require.NoError(t, err)
	assert.Equal(t, "exited", ts.Phase)
}

// TestFilesExitWithKilledNeighbour: SIGKILL the main container's
// lifecycled (as the OOM killer does): its tombstone still says running,
// but its lock is gone, and the sidecar stops within its drain delay + 2 s
// and says why, in its log and its termination message.
func TestFilesExitWithKilledNeighbour(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	stones := filepath.Join(dir, "tombstones")
	sidecarDir := filepath.Join(dir, "sidecar")
	termLog := filepath.Join(dir, "termination-log")
	const drainDelay = time.Second

	// The sidecar starts first, as it usually does: no tombstone of job yet.
	sidecar := startSidecar(t, ctx, stones, sidecarDir, "--drain-delay", drainDelay.String(), "--termination-log", termLog)

	job := start(t, options{env: quickExit()}, "--tombstone-dir", stones, "--name", "job", "--", "sleep", "60")
	require.NotNil(t, job)
	require.NoError(t, poll(ctx, func() bool {
		ts, err := readTombstoneFile(filepath.Join(stones, "job.json"))
		return err == nil && ts.Phase == "running"
	}))
	// The sidecar takes a free lock for a death only once it has seen it
	// held: two of its looks at the lock, so the first has ended.
	require.NoError(t, proctest.WaitReads(ctx, filepath.Join(stones, "job.lock"), 2), "the sidecar never looked at the job's lock")
	require.False(t, sidecar.hasExited(), "the sidecar stopped while the job ran")

	require.NoError(t, job.signal(ctx, syscall.SIGKILL))
	killed := time.Now()
	assert.Equal(t, "killed", job.wait(ctx).signal)
	ts, err := readTombstoneFile(filepath.Join(stones, "job.json"))
	require.NoError(t, err)
	require.Equal(t, "running", ts.Phase, "a SIGKILLed lifecycled cannot write exited")

	res := sidecar.wait(ctx)
	took := time.Since(killed)
	assert.Equal(t, 0, res.code, "sidecar stderr:\n%s", res.stderr)
	assert.Less(t, took, drainDelay+2*time.Second, "the sidecar did not stop soon after the job's lifecycled was killed")
	assert.GreaterOrEqual(t, took, drainDelay, "the sidecar skipped its drain delay")
	const why = "job died without writing exited (lock released)"
	assert.Contains(t, res.stderr, why)
	msg, err := os.ReadFile(termLog)
	require.NoError(t, err)
	assert.Contains(t, string(msg), why)
	assert.FileExists(t, filepath.Join(sidecarDir, "term"), "the sidecar's child was not stopped with SIGTERM")
	t.Logf("sidecar stopped %s after the kill (drain delay %s); termination message: %s", took, drainDelay, msg)
}

// TestFilesOnExitPost: every --on-exit-post URL gets a POST once the child
// is gone; one that never answers holds lifecycled at most 5 s.
func TestFilesOnExitPost(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	dir := t.TempDir()
	ok := newFlipServer(t, http.StatusOK)
	var hangOnce sync.Once
	hangCalled := make(chan time.Time, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangOnce.Do(func() { hangCalled <- time.Now() })
		<-r.Context().Done() // never answers; returns when the client gives up
	}))
	t.Cleanup(hang.Close)

	end := filepath.Join(dir, "end")
	res := runQuick(t, ctx, "--on-exit-post", ok.URL+"/quitquitquit", "--on-exit-post", hang.URL+"/shutdown",
		"--", "sh", "-c", "sleep 0.2; date +%s%N > "+end)
	assert.Equal(t, 0, res.code, "stderr:\n%s", res.stderr)
	ended, err := readStamp(ctx, end)
	require.NoError(t, err)

	require.Equal(t, int32(1), ok.hits.Load(), "want one POST")
	r := ok.last()
	assert.Equal(t, http.MethodPost, r.method)
	assert.Equal(t, "/quitquitquit", r.path)
	assert.True(t, strings.HasPrefix(r.agent, "lifecycled/"), "User-Agent %q", r.agent)
	assert.True(t, r.at.After(ended), "POST before the child exited")
	select {
	case at := <-hangCalled:
		assert.True(t, at.After(ended))
	default:
		t.Error("the hanging URL was never called")
	}
	t.Logf("lifecycled ran %s", res.elapsed)
	assert.Less(t, res.elapsed, 8*time.Second, "the hanging POST was not bounded by 5s")
	assert.GreaterOrEqual(t, res.elapsed, 4*time.Second, "the hanging POST was not waited for")
	assert.Len(t, logRecords(res.stderr, "on-exit POST failed"), 1, "stderr:\n%s", res.stderr)
}

// tombstoneFile is NAME.json as contract section 6 spells it.
type tombstoneFile struct {
	Name      string  `json:"name"`
	Phase     string  `json:"phase"`
	PID       int     `json:"pid"`
	ExitCode  *int    `json:"exitCode"`
	Signal    *string `json:"signal"`
	UpdatedAt string  `json:"updatedAt"`
}

func readTombstoneFile(path string) (tombstoneFile, error) {
	var ts tombstoneFile
	b, err := os.ReadFile(path)
	if err != nil {
		return ts, err
	}
	if err := json.Unmarshal(b, &ts); err != nil {
		return ts, fmt.Errorf("%s: %w (%q)", path, err, b)
	}
	return ts, nil
}

// tombstoneWatch polls a tombstone every few milliseconds and keeps the
// distinct phases seen, in order.
type tombstoneWatch struct {
	mu     sync.Mutex
	seen   []string
	latest tombstoneFile
}

// startSidecar starts the sidecar of the --exit-with tests, "proxy", which
// stops with "job", its child in dir, and waits for the child's traps.
func startSidecar(t *testing.T, ctx context.Context, stones, dir string, args ...string) *proc {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	args = append([]string{"--tombstone-dir", stones, "--name", "proxy", "--exit-with", "job"}, args...)
	p := startTrapping(t, ctx, dir, args...)
	return p
}

func watchTombstone(t testing.TB, path string) *tombstoneWatch {
	w := &tombstoneWatch{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if ts, err := readTombstoneFile(path); err == nil {
				w.mu.Lock()
				if len(w.seen) == 0 || w.seen[len(w.seen)-1] != ts.Phase {
					w.seen = append(w.seen, ts.Phase)
				}
				w.latest = ts
				w.mu.Unlock()
			} else if !os.IsNotExist(err) {
				t.Errorf("tombstone torn or unreadable: %v", err)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait() })
	return w
}

func (w *tombstoneWatch) last() tombstoneFile {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

func (w *tombstoneWatch) phases() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
}

// readJSONLines parses every line of path as a JSON object.
func readJSONLines(t testing.TB, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r map[string]any
		if assert.NoError(t, json.Unmarshal(sc.Bytes(), &r), "line %q", sc.Text()) {
			out = append(out, r)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// checkStartAndDuration checks the timing fields of a hook line.
func checkStartAndDuration(t *testing.T, r map[string]any) {
	t.Helper()
	s, _ := r["start_time"].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if assert.NoError(t, err, "start_time %q", r["start_time"]) {
		assert.WithinDuration(t, time.Now(), at, time.Minute)
	}
	d, ok := r["duration_seconds"].(float64)
	assert.True(t, ok, "duration_seconds %v", r["duration_seconds"])
	assert.GreaterOrEqual(t, d, 0.0)
	assert.Less(t, d, 30.0)
}
