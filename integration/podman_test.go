package integration

// Real containers: TestPodman builds the lifecycled image (Dockerfile) and
// the demo images (examples/demo) with podman, runs lifecycled as PID 1 of
// containers, stops them as `podman stop` and the kubelet do, and plays
// every podman twin in examples/podman/ with `podman kube play`.
//
// Networking stays on --network none, a pod's own loopback, or the host's
// network on 127.0.0.1 with free ports. Everything a run creates (images,
// containers, pods, volumes) carries the run's id and is removed at the end.
//
// podman 4.3 (Debian 12) quirks these tests work around, each explained
// where it matters: `kube down` kills without a grace period (so pods are
// stopped with `podman pod stop -t N` first, as the kubelet would), `exec`
// is refused into a stopping container (so readiness during a stop is
// watched from the host's network), emptyDir volumes are named after the
// volume (so the test renames them per run), and `kube down` stops at the
// first pod that is already gone (so cleanup removes pods one by one).

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/lifecycled/lifecycled/internal/proctest"
)

// podmanTimeout bounds one podman command unless a test says otherwise.
const podmanTimeout = 90 * time.Second

// podman runs podman commands for one test run with the project's podman
// configuration, and knows the images the run built.
type podman struct {
	env []string
	id  string // unique per run: in every tag and name the run creates

	lifecycledImage, demoImage, noshellImage string
	binary                                   string // the static lifecycled in the image
}

// podmanResult is how one podman command ended.
type podmanResult struct {
	args           []string
	stdout, stderr string
	code           int // -1: did not run or killed at the deadline
	err            error
}

func (r podmanResult) String() string {
	return fmt.Sprintf("podman %s: exit %d %v\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.err, r.stdout, r.stderr)
}

// run runs `podman args...` to the end or the deadline of ctx.
func (p *podman) run(ctx context.Context, args ...string) podmanResult {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, podmanTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Env = p.env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := podmanResult{args: args, stdout: stdout.String(), stderr: stderr.String(), code: -1, err: err}
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.code = 0
	case ctx.Err() != nil:
		res.err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	}
	return res
}

// must runs `podman args...` and fails the test unless it exits 0; it
// returns stdout.
func (p *podman) must(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	res := p.run(ctx, args...)
	require.Equal(t, 0, res.code, "%s", res)
	return res.stdout
}

// newPodman checks that podman is there and usable, and builds the images.
// A missing podman fails the test: .ci/test.sh installs it.
func newPodman(t *testing.T) *podman {
	t.Helper()
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Fatalf("busybox is not installed: these tests need busybox-static (.ci/test.sh installs it: apt-get install busybox-static)")
	}
	p := podmanClient(t)
	p.buildImages(t, testContext(t, 5*time.Minute), repoRoot(t))
	return p
}

// podmanClient checks that podman is there and usable, and returns a
// client with the project's podman settings and an id of its own, with no
// image built.
func podmanClient(t *testing.T) *podman {
	t.Helper()
	for _, tool := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: these tests need podman and runc "+
				"(.ci/test.sh installs them: apt-get install podman runc)", tool)
		}
	}
	env := os.Environ()
	if os.Getenv("CONTAINERS_CONF") == "" {
		// The project's podman settings (shared/MACHINE.md): runc and
		// cgroupfs, and ulimits podman can set here.
		env = append(env, "CONTAINERS_CONF="+filepath.Join(repoRoot(t), "integration", "podman", "containers.conf"))
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	p := &podman{env: env, id: hex.EncodeToString(b)}
	if res := p.run(testContext(t, time.Minute), "info", "--format", "{{.Host.OCIRuntime.Name}}"); res.code != 0 {
		t.Fatalf("podman does not work here (is CONTAINERS_CONF=integration/podman/containers.conf set?): %s", res)
	}
	return p
}

// buildImages builds a static lifecycled and, from it, the lifecycled
// image with the repository's Dockerfile and the demo images with
// examples/demo/Dockerfile{,.noshell}, offline, under tags of this run.
func (p *podman) buildImages(t *testing.T, ctx context.Context, root string) {
	t.Helper()
	p.lifecycledImage = "localhost/lifecycled:test-" + p.id
	p.demoImage = "localhost/lifecycled-demo:test-" + p.id
	p.noshellImage = "localhost/lifecycled-demo:test-" + p.id + "-noshell"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, img := range []string{p.noshellImage, p.demoImage, p.lifecycledImage} {
			if res := p.run(ctx, "rmi", "-f", img); res.code != 0 {
				t.Errorf("cleanup: %s", res)
			}
		}
	})

	// As `make build` does, outside the image: CGO_ENABLED=0, static.
	lcCtx := t.TempDir()
	p.binary = filepath.Join(lcCtx, "bin", "lifecycled")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", p.binary, "./cmd/lifecycled")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	copyFileMode(t, filepath.Join(root, ".dockerignore"), filepath.Join(lcCtx, ".dockerignore"))
	p.must(t, ctx, "build", "--isolation", "chroot", "-f", filepath.Join(root, "Dockerfile.prebuilt"),
		"--build-arg", "BINARY=bin/lifecycled", "--build-arg", "VERSION="+testImageVersion, "--build-arg", "REVISION="+testImageRevision,
		"-t", p.lifecycledImage, lcCtx)

	demoCtx := t.TempDir()
	copyDir(t, filepath.Join(root, "examples", "demo"), demoCtx)
	bb, err := exec.LookPath("busybox")
	require.NoError(t, err)
	copyFileMode(t, bb, filepath.Join(demoCtx, "busybox"))
	for tag, dockerfile := range map[string]string{p.demoImage: "Dockerfile", p.noshellImage: "Dockerfile.noshell"} {
		p.must(t, ctx, "build", "--isolation", "chroot", "--build-arg", "LIFECYCLED_IMAGE="+p.lifecycledImage,
			"-f", filepath.Join(demoCtx, dockerfile), "-t", tag, demoCtx)
	}
}

func copyFileMode(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	fi, err := os.Stat(from)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(to), 0o755))
	require.NoError(t, os.WriteFile(to, b, fi.Mode().Perm()))
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if rel == "busybox" { // a developer's copy: the test brings its own
			return nil
		}
		copyFileMode(t, path, filepath.Join(to, rel))
		return nil
	})
	require.NoError(t, err)
}

// runContainer runs a container to its end (`podman run --rm`), named so
// that cleanup can remove it if the deadline kills the client.
func (p *podman) runContainer(t *testing.T, ctx context.Context, args ...string) podmanResult {
	t.Helper()
	name := p.name()
	t.Cleanup(func() { p.remove(name) })
	return p.run(ctx, append([]string{"run", "--rm", "--name", name}, args...)...)
}

// name is a container name unique to this run.
func (p *podman) name() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "lifecycled-test-" + p.id + "-" + hex.EncodeToString(b)
}

// remove removes a container, running or not; it is not an error if it is
// already gone.
func (p *podman) remove(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.run(ctx, "rm", "-f", "-t", "0", name)
}

// inspect returns `podman container inspect --format FORMAT name`.
func (p *podman) inspect(t *testing.T, ctx context.Context, name, format string) string {
	t.Helper()
	return strings.TrimSpace(p.must(t, ctx, "container", "inspect", "--format", format, name))
}

// exitCode is the container's exit code once it has exited.
func (p *podman) exitCode(t *testing.T, ctx context.Context, name string) int {
	t.Helper()
	require.Equal(t, "exited", p.inspect(t, ctx, name, "{{.State.Status}}"), "container %s", name)
	code, err := strconv.Atoi(p.inspect(t, ctx, name, "{{.State.ExitCode}}"))
	require.NoError(t, err)
	return code
}

// logs is the container's output, stdout then stderr.
func (p *podman) logs(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	res := p.run(ctx, "logs", name)
	require.Equal(t, 0, res.code, "%s", res)
	return res.stdout + res.stderr
}

// eventually polls cond every interval until it holds or ctx ends; it fails
// the test with what.
func eventually(t *testing.T, ctx context.Context, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	if proctest.Poll(ctx, interval, cond) != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// lifecycledLog is one JSON line of lifecycled's log.
type lifecycledLog map[string]any

func (e lifecycledLog) str(k string) string { s, _ := e[k].(string); return s }

func (e lifecycledLog) time(t *testing.T) time.Time {
	ts, err := time.Parse(time.RFC3339Nano, e.str("time"))
	require.NoError(t, err, "log entry %v", e)
	return ts
}

// lifecycledLogs are lifecycled's JSON log lines in a container's output, in
// order; other lines (the app's) are skipped.
func lifecycledLogs(out string) []lifecycledLog {
	var es []lifecycledLog
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e lifecycledLog
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.str("msg") != "" {
			es = append(es, e)
		}
	}
	return es
}

// findLogs returns the entries with message msg whose fields match kv.
func findLogs(es []lifecycledLog, msg string, kv ...string) []lifecycledLog {
	var out []lifecycledLog
	for _, e := range es {
		if e.str("msg") != msg {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(e[kv[i]]) != kv[i+1] {
				ok = false
			}
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

// loopbackClient talks to 127.0.0.1 only, never through a proxy.
var loopbackClient = &http.Client{
	Timeout:   500 * time.Millisecond,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

// statusOf GETs url and returns the status code, or 0 if nothing answered.
func statusOf(url string) int {
	resp, err := loopbackClient.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPodman is every test with real containers. One top-level test, so
// that the images are built once and removed at the end.
func TestPodman(t *testing.T) {
	p := newPodman(t)
	t.Run("image", func(t *testing.T) { testPodmanImage(t, p) })
	t.Run("dockerfile", func(t *testing.T) { testPodmanDockerfile(t, p) })
	t.Run("exit-codes", func(t *testing.T) { testPodmanExitCodes(t, p) })
	t.Run("zombies", func(t *testing.T) { testPodmanZombies(t, p) })
	t.Run("stop", func(t *testing.T) { testPodmanStop(t, p) })
	t.Run("dead-neighbour", func(t *testing.T) { testPodmanDeadNeighbour(t, p) })
	for _, f := range slices.Sorted(maps.Keys(kubePlayScenarios)) {
		t.Run("kube/"+f, func(t *testing.T) { kubePlayScenarios[f](t, p, p.play(t, f)) })
	}
	t.Run("inject", func(t *testing.T) { testPodmanInject(t, p) })
	t.Run("liveness-while-waiting", func(t *testing.T) {
		testPodmanLivenessWhileWaiting(t, p, p.play(t, filepath.Join(repoRoot(t), "integration", "testdata", "podman", "liveness-wait.yaml")))
	})
}

// testPodmanLivenessWhileWaiting: a pod whose lifecycled waits a long time
// for a dependency is alive all along: its livenessProbe on /livez (every
// second, one failure restarts) passes every time, the container is never
// restarted, while /readyz rightly fails.
func testPodmanLivenessWhileWaiting(t *testing.T, p *podman, k *kubePlay) {
	ctx := testContext(t, 3*time.Minute)
	k.played(t, ctx, p)
	web := k.container(0, "web")
	// The health check is the livenessProbe, as podman 4.3 converted it.
	assert.Contains(t, p.inspect(t, ctx, web, "{{json .Config.Healthcheck}}"), "/livez")
	p.execOK(t, ctx, web, "/lifecycled", "probe", "http://127.0.0.1:9090/livez")

	healthy := 0
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		hc := p.run(ctx, "healthcheck", "run", web)
		require.Equal(t, 0, hc.code, "liveness failed while waiting for a dependency: %s\n%s", hc, p.logs(t, ctx, web))
		healthy++
		ready := p.run(ctx, "exec", web, "/lifecycled", "probe", "http://127.0.0.1:9090/readyz")
		require.Equal(t, 1, ready.code, "/readyz must fail while waiting: %s", ready)
	}
	t.Logf("%d liveness checks over 12 s of waiting, all healthy", healthy)
	assert.Equal(t, "running", p.inspect(t, ctx, web, "{{.State.Status}}"))
	assert.Equal(t, "0", p.inspect(t, ctx, web, "{{.RestartCount}}"), "restarted while waiting")
	assert.Equal(t, "healthy", p.inspect(t, ctx, web, "{{.State.Health.Status}}"))
	logs := p.logs(t, ctx, web)
	assert.NotEmpty(t, findLogs(lifecycledLogs(logs), "starting"), "%s", logs)
	assert.Empty(t, findLogs(lifecycledLogs(logs), "child started"), "the dependency never came: %s", logs)

	k.stop(t, ctx, p, 10)
	assert.Equal(t, 143, p.exitCode(t, ctx, web), "SIGTERM while waiting: 143, nothing started")
	k.down(t, ctx, p)
}

// testPodmanImage checks the lifecycled image: only the binary, not root,
// lifecycled as ENTRYPOINT, SIGTERM as stop signal; and that it works alone
// for `version`, `probe` and `wait`.
func testPodmanImage(t *testing.T, p *podman) {
	ctx := testContext(t, 3*time.Minute)
	var img struct {
		Size   int64
		Config struct {
			User       string
			Entrypoint []string
			StopSignal string
			Labels     map[string]string
		}
	}
	var imgs []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(p.must(t, ctx, "image", "inspect", p.lifecycledImage)), &imgs))
	require.Len(t, imgs, 1)
	require.NoError(t, json.Unmarshal(imgs[0], &img))
	assert.Equal(t, "65532:65532", img.Config.User)
	assert.Equal(t, []string{"/lifecycled"}, img.Config.Entrypoint)
	assert.Contains(t, []string{"SIGTERM", "TERM", "15"}, img.Config.StopSignal)
	assert.Equal(t, map[string]string{
		"org.opencontainers.image.title":       "lifecycled",
		"org.opencontainers.image.description": img.Config.Labels["org.opencontainers.image.description"],
		"org.opencontainers.image.source":      "https://github.com/lifecycled/lifecycled",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     testImageVersion,
		"org.opencontainers.image.revision":    testImageRevision,
	}, ociLabels(img.Config.Labels), "the OCI labels, from the build arguments")
	assert.NotEmpty(t, img.Config.Labels["org.opencontainers.image.description"])
	fi, err := os.Stat(p.binary)
	require.NoError(t, err)
	assert.Less(t, img.Size, fi.Size()+64<<10, "the image should hold the binary and nothing else (%d bytes, binary %d)", img.Size, fi.Size())

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		output string
	}{
		{"version", []string{"version"}, 0, "lifecycled "},
		{"probe down", []string{"probe", "tcp://127.0.0.1:1"}, 1, "tcp://127.0.0.1:1 is down"},
		{"wait timeout", []string{"wait", "--timeout", "1s", "tcp://127.0.0.1:1"}, 124, "tcp://127.0.0.1:1"},
		{"command not found", []string{"--", "/no/such/command"}, 127, "/no/such/command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := p.runContainer(t, ctx, append([]string{"--network", "none", p.lifecycledImage}, tc.args...)...)
			assert.Equal(t, tc.code, res.code, "%s", res)
			assert.Contains(t, res.stdout+res.stderr, tc.output)
		})
	}
	t.Run("not root", func(t *testing.T) {
		res := p.runContainer(t, ctx, "--network", "none", p.demoImage, "--", "id", "-u")
		require.Equal(t, 0, res.code, "%s", res)
		assert.Equal(t, "65532", strings.TrimSpace(res.stdout))
	})
}

// ociLabels are the org.opencontainers.image.* labels of labels (the
// builder adds its own).
func ociLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if strings.HasPrefix(k, "org.opencontainers.image.") {
			out[k] = v
		}
	}
	return out
}

// testPodmanExitCodes runs lifecycled as PID 1 of containers: the
// container's exit code is the child's (contract section 2).
func testPodmanExitCodes(t *testing.T, p *podman) {
	ctx := testContext(t, 3*time.Minute)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"exit 7", []string{"--", "sh", "-c", "exit 7"}, 7},
		{"exit 0", []string{"--", "true"}, 0},
		{"killed by SIGKILL", []string{"--", "sh", "-c", "kill -KILL $$"}, 137},
		{"exit code mapped", []string{"--exit-code-map", "3:0", "--", "sh", "-c", "exit 3"}, 0},
		{"not found", []string{"--", "no-such-command"}, 127},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := p.runContainer(t, ctx, append([]string{"--network", "none", p.demoImage}, tc.args...)...)
			assert.Equal(t, tc.code, res.code, "%s", res)
		})
	}
	t.Run("pid 1", func(t *testing.T) {
		res := p.runContainer(t, ctx, "--network", "none", p.demoImage, "--", "sh", "-c",
			`echo "pid1=$(tr '\0' ' ' < /proc/1/cmdline)"; echo "ppid=$PPID"`)
		require.Equal(t, 0, res.code, "%s", res)
		assert.Contains(t, res.stdout, "pid1=/lifecycled -- sh -c")
		assert.Contains(t, res.stdout, "ppid=1\n", "the child's parent is lifecycled, PID 1")
	})
}

// orphansScript makes 20 orphans that exit after 1s, then shows the
// process table twice: while they run (they now belong to PID 1) and after
// they exited (nothing left, if PID 1 reaps).
const orphansScript = `for i in $(seq 20); do (sleep 1 &); done; sleep 0.3; echo BEFORE; ps -o ppid,stat,comm; sleep 1.5; echo AFTER; ps -o ppid,stat,comm`

// psRow is one line of `ps -o ppid,stat,comm`.
type psRow struct{ ppid, stat, comm string }

func parsePs(out string) []psRow {
	var rows []psRow
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] != "PPID" {
			rows = append(rows, psRow{f[0], f[1], f[2]})
		}
	}
	return rows
}

func zombieRows(rows []psRow) []psRow {
	var z []psRow
	for _, r := range rows {
		if strings.HasPrefix(r.stat, "Z") {
			z = append(z, r)
		}
	}
	return z
}

// testPodmanZombies: orphans reparented to lifecycled as PID 1 are reaped;
// the same orphans under a PID 1 that does not reap stay zombies, which
// shows that the check sees them.
func testPodmanZombies(t *testing.T, p *podman) {
	ctx := testContext(t, 2*time.Minute)
	res := p.runContainer(t, ctx, "--network", "none", p.demoImage, "--", "sh", "-c", orphansScript)
	require.Equal(t, 0, res.code, "%s", res)
	before, after, ok := strings.Cut(res.stdout, "AFTER")
	require.True(t, ok, "%s", res)
	orphans := 0
	for _, r := range parsePs(before) {
		if r.ppid == "1" && r.comm == "sleep" {
			orphans++
		}
	}
	assert.Positive(t, orphans, "no orphan was reparented to PID 1:\n%s", before)
	assert.Empty(t, zombieRows(parsePs(after)), "zombies left under lifecycled as PID 1:\n%s", after)

	// Control: PID 1 is `sleep`, which never waits.
	name := p.name()
	t.Cleanup(func() { p.remove(name) })
	p.must(t, ctx, "run", "-d", "--name", name, "--network", "none", "--entrypoint", "/bin/sh", p.demoImage,
		"-c", `for i in $(seq 20); do (sleep 0.1 &); done; exec sleep 30`)
	var rows []psRow
	eventually(t, ctx, 200*time.Millisecond, "zombies under a PID 1 that does not reap", func() bool {
		res := p.run(ctx, "exec", name, "ps", "-o", "ppid,stat,comm")
		rows = parsePs(res.stdout)
		return len(zombieRows(rows)) > 0
	})
}

// testPodmanStop: `podman stop -t 10` on lifecycled with --drain-delay 2s.
// From the host's network (podman refuses `exec` into a stopping
// container), /readyz turns 503 at once while the app still answers, the
// app is stopped after the drain delay, and the container exits 0 soon
// after: the stop takes the drain delay plus little, not the 10s timeout.
func testPodmanStop(t *testing.T, p *podman) {
	ctx := testContext(t, 2*time.Minute)
	lport, aport := loopbackPort(t), loopbackPort(t)
	tomb := t.TempDir()
	require.NoError(t, os.Chmod(tomb, 0o777)) // the container runs as 65532
	name := p.name()
	t.Cleanup(func() { p.remove(name) })
	p.must(t, ctx, "run", "-d", "--name", name, "--network", "host",
		"-v", tomb+":/tombstones", "-e", "BIND=127.0.0.1", "-e", fmt.Sprintf("PORT=%d", aport), "-e", "START_DELAY=0",
		p.demoImage,
		"--listen", fmt.Sprintf("127.0.0.1:%d", lport), "--drain-delay", "2s", "--grace-period", "5s",
		"--ready", fmt.Sprintf("http://127.0.0.1:%d/", aport), "--ready-period", "200ms",
		"--tombstone-dir", "/tombstones", "--name", "app", "--", "/app")
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", lport)
	app := fmt.Sprintf("http://127.0.0.1:%d/", aport)
	eventually(t, ctx, 50*time.Millisecond, "/readyz 200", func() bool { return statusOf(readyz) == http.StatusOK })
	require.Equal(t, http.StatusOK, statusOf(app))

	start := time.Now()
	stopped := make(chan podmanResult, 1)
	go func() { stopped <- p.run(ctx, "stop", "-t", "10", name) }()
	var unready, appDown time.Time
	servedWhileDraining := 0
	var res podmanResult
poll:
	for {
		select {
		case res = <-stopped:
			break poll
		case <-time.After(20 * time.Millisecond):
		}
		now := time.Now()
		if unready.IsZero() && statusOf(readyz) != http.StatusOK {
			unready = now
		}
		if appDown.IsZero() {
			if statusOf(app) == http.StatusOK {
				if !unready.IsZero() {
					servedWhileDraining++
				}
			} else {
				appDown = now
			}
		}
	}
	elapsed := time.Since(start)
	require.Equal(t, 0, res.code, "%s", res)
	require.False(t, unready.IsZero(), "/readyz never failed during the stop")
	require.False(t, appDown.IsZero(), "the app never stopped answering")
	t.Logf("podman stop: /readyz failed after %v, the app stopped answering after %v, stop took %v",
		unready.Sub(start).Round(time.Millisecond), appDown.Sub(start).Round(time.Millisecond), elapsed.Round(time.Millisecond))
	assert.Less(t, unready.Sub(start), 3*time.Second, "readiness must fail at once (the time includes podman's own start)")
	assert.Positive(t, servedWhileDraining, "the app must keep serving while /readyz fails (drain delay)")
	assert.GreaterOrEqual(t, appDown.Sub(unready), 1500*time.Millisecond, "the app stopped before the 2s drain delay")
	assert.GreaterOrEqual(t, elapsed, 2*time.Second, "the stop did not wait for the drain delay")
	assert.Less(t, elapsed, 7*time.Second, "the stop took more than drain delay + a little: the stop timeout or the grace period was waited for")

	assert.Equal(t, 0, p.exitCode(t, ctx, name), "the app exits 0 on SIGTERM")
	logs := p.logs(t, ctx, name)
	assert.Contains(t, logs, "app: got SIGTERM")
	es := lifecycledLogs(logs)
	assert.NotEmpty(t, findLogs(es, "drain delay", "delay_seconds", "2"), "%s", logs)
	assert.NotEmpty(t, findLogs(es, "exiting", "exit_code", "0"), "%s", logs)
	var tomb1 struct {
		Phase    string
		ExitCode *int
	}
	b, err := os.ReadFile(filepath.Join(tomb, "app.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &tomb1))
	assert.Equal(t, "exited", tomb1.Phase)
	if assert.NotNil(t, tomb1.ExitCode) {
		assert.Equal(t, 0, *tomb1.ExitCode)
	}
}

// kubePlay is one podman twin as played by this run: a copy of the file
// with this run's images, names and ports.
type kubePlay struct {
	file        string
	pods        []string
	volumes     []string // emptyDir volumes: podman makes named volumes of them
	hostNetwork bool
	ports       map[int]int // the file's host ports -> this run's
}

// container is the podman name of container c of the i-th pod.
func (k *kubePlay) container(pod int, c string) string { return k.pods[pod] + "-" + c }

// hostPorts are the ports each twin on the host's network uses; the test
// gives them free ports instead.
var hostPorts = map[string][]int{
	"init-container-wait.yaml": {15432, 18080, 19090},
}

// play copies examples/podman/FILE with this run's images, names and
// ports, and runs `podman kube play` on it. Pods and volumes are removed at
// the end of the test.
func (p *podman) play(t *testing.T, file string) *kubePlay {
	t.Helper()
	path := file
	if !filepath.IsAbs(path) {
		path = filepath.Join(repoRoot(t), "examples", "podman", file)
	}
	file = filepath.Base(file)
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	text := strings.NewReplacer(
		"localhost/lifecycled:dev", p.lifecycledImage,
		"localhost/lifecycled-demo:dev", p.demoImage,
		"localhost/lifecycled-demo:noshell", p.noshellImage,
	).Replace(string(src))
	k := &kubePlay{ports: map[int]int{}}
	for _, port := range hostPorts[file] {
		k.ports[port] = loopbackPort(t)
		text = regexp.MustCompile(`\b`+strconv.Itoa(port)+`\b`).ReplaceAllString(text, strconv.Itoa(k.ports[port]))
	}

	var out []string
	for i, doc := range splitYAML([]byte(text)) {
		obj, err := decodeStrict(doc)
		require.NoError(t, err, "%s: document %d", file, i+1)
		var spec *corev1.PodSpec
		switch o := obj.(type) {
		case *corev1.Pod:
			o.Name += "-" + p.id
			k.pods = append(k.pods, o.Name)
			spec = &o.Spec
		case *appsv1.Deployment:
			o.Name += "-" + p.id
			n := 1
			if o.Spec.Replicas != nil {
				n = int(*o.Spec.Replicas)
			}
			for r := range n {
				k.pods = append(k.pods, fmt.Sprintf("%s-pod-%d", o.Name, r))
			}
			spec = &o.Spec.Template.Spec
		default:
			t.Fatalf("%s: podman 4.3 cannot play %T", file, obj)
		}
		k.hostNetwork = k.hostNetwork || spec.HostNetwork
		renameVolumes(spec, p.id)
		for _, v := range spec.Volumes {
			if v.EmptyDir != nil {
				k.volumes = append(k.volumes, v.Name)
			}
		}
		b, err := yaml.Marshal(obj)
		require.NoError(t, err)
		out = append(out, string(b))
	}
	k.file = filepath.Join(t.TempDir(), file)
	require.NoError(t, os.WriteFile(k.file, []byte(strings.Join(out, "---\n")), 0o644))

	t.Cleanup(func() {
		// One by one: `kube down` gives up at the first pod already gone.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, pod := range k.pods {
			if p.run(ctx, "pod", "exists", pod).code == 0 {
				if res := p.run(ctx, "pod", "rm", "-f", "-t", "0", pod); res.code != 0 {
					t.Errorf("cleanup: %s", res)
				}
			}
		}
		for _, v := range k.volumes {
			p.run(ctx, "volume", "rm", "-f", v)
		}
	})
	return k
}

// renameVolumes gives the pod's volumes this run's names: podman 4.3 makes
// a named volume of each emptyDir, named as the volume, shared by every pod
// that uses the name.
func renameVolumes(spec *corev1.PodSpec, id string) {
	for i := range spec.Volumes {
		spec.Volumes[i].Name += "-" + id
	}
	for _, c := range allContainers(spec) {
		for i := range c.VolumeMounts {
			c.VolumeMounts[i].Name += "-" + id
		}
	}
}

// start runs `podman kube play` (--network none unless the pods are on the
// host's network) and returns when podman does: after the init containers
// ran.
func (k *kubePlay) start(t *testing.T, ctx context.Context, p *podman) podmanResult {
	t.Helper()
	args := []string{"kube", "play"}
	if !k.hostNetwork {
		args = append(args, "--network", "none")
	}
	return p.run(ctx, append(args, k.file)...)
}

// played starts the pods and requires kube play to succeed.
func (k *kubePlay) played(t *testing.T, ctx context.Context, p *podman) {
	t.Helper()
	res := k.start(t, ctx, p)
	require.Equal(t, 0, res.code, "%s", res)
}

// stop stops the pods as the kubelet does (stop signal, then SIGKILL after
// terminationGracePeriodSeconds) and returns how long it took. podman 4.3's
// `kube down` alone would SIGKILL at once (podman#22397).
func (k *kubePlay) stop(t *testing.T, ctx context.Context, p *podman, grace int) time.Duration {
	t.Helper()
	start := time.Now()
	p.must(t, ctx, append([]string{"pod", "stop", "-t", strconv.Itoa(grace)}, k.pods...)...)
	return time.Since(start)
}

// down runs `podman kube down` and checks that the pods and their volumes
// are gone.
func (k *kubePlay) down(t *testing.T, ctx context.Context, p *podman) {
	t.Helper()
	p.must(t, ctx, "kube", "down", k.file)
	for _, pod := range k.pods {
		assert.NotEqual(t, 0, p.run(ctx, "pod", "exists", pod).code, "pod %s still there after kube down", pod)
	}
	for _, v := range k.volumes {
		assert.NotEqual(t, 0, p.run(ctx, "volume", "exists", v).code, "volume %s still there after kube down", v)
	}
}

// execOK polls `podman exec container args...` until it exits 0 and
// returns its stdout.
func (p *podman) execOK(t *testing.T, ctx context.Context, container string, args ...string) string {
	t.Helper()
	var res podmanResult
	eventually(t, ctx, 200*time.Millisecond, fmt.Sprintf("podman exec %s %v to succeed", container, args), func() bool {
		res = p.run(ctx, append([]string{"exec", container}, args...)...)
		return res.code == 0
	})
	return res.stdout
}

// kubePlayScenarios runs each twin in examples/podman/ and checks that it
// behaves as its comments say. TestExamplesPodmanTwins checks that every
// twin has one.
var kubePlayScenarios = map[string]func(t *testing.T, p *podman, k *kubePlay){
	"deployment-entrypoint.yaml":  kubeDeploymentEntrypoint,
	"init-container-wait.yaml":    kubeInitContainerWait,
	"native-sidecar.yaml":         kubeNativeSidecar,
	"job-with-sidecar.yaml":       kubeJobWithSidecar,
	"exec-probes-distroless.yaml": kubeExecProbes,
}

// kubeDeploymentEntrypoint: lifecycled wraps the app; /readyz follows the
// app; a stop drains 5s and the app exits 0.
func kubeDeploymentEntrypoint(t *testing.T, p *podman, k *kubePlay) {
	ctx := testContext(t, 3*time.Minute)
	k.played(t, ctx, p)
	web := k.container(0, "web")
	get := func(path string) string {
		return p.execOK(t, ctx, web, "wget", "-qO-", "http://127.0.0.1:9090"+path)
	}
	verbose := get("/readyz?verbose")
	for _, check := range []string{"[+]dependencies ok", "[+]child ok", "[+]readiness-probe ok", "[+]shutdown ok"} {
		assert.Contains(t, verbose, check)
	}
	assert.Equal(t, "ok", strings.TrimSpace(get("/livez")))
	assert.Equal(t, "ok", strings.TrimSpace(get("/startupz")))
	assert.Regexp(t, `(?m)^lifecycled_ready 1$`, get("/metrics"))
	assert.Equal(t, "hello from the lifecycled demo app\n", p.execOK(t, ctx, web, "wget", "-qO-", "http://127.0.0.1:8080/"))

	k.stopDrained(t, ctx, p, web, 5*time.Second)
}

// stopDrained stops the played pod and asserts that container web drained
// for drain before the app's SIGTERM, and exited 0.
func (k *kubePlay) stopDrained(t *testing.T, ctx context.Context, p *podman, web string, drain time.Duration) {
	t.Helper()
	took := k.stop(t, ctx, p, 30)
	t.Logf("pod stop took %v (drain %v)", took.Round(time.Millisecond), drain)
	assert.GreaterOrEqual(t, took, drain, "the stop did not wait for the drain delay")
	assert.Less(t, took, 15*time.Second)
	assert.Equal(t, 0, p.exitCode(t, ctx, web))
	logs := p.logs(t, ctx, web)
	assert.Contains(t, logs, "app: got SIGTERM")
	assert.NotEmpty(t, findLogs(lifecycledLogs(logs), "drain delay", "delay_seconds", strconv.Itoa(int(drain.Seconds()))), "%s", logs)
	k.down(t, ctx, p)
}

// kubeInitContainerWait: the orders pod's init container waits until the
// postgres pod listens (5s after its start); orders starts only then.
func kubeInitContainerWait(t *testing.T, p *podman, k *kubePlay) {
	ctx := testContext(t, 3*time.Minute)
	require.True(t, k.hostNetwork)
	db := fmt.Sprintf("127.0.0.1:%d", k.ports[15432])
	orders := k.container(1, "orders")

	start := time.Now()
	played := make(chan podmanResult, 1)
	go func() { played <- k.start(t, ctx, p) }()
	var dbUp time.Time
	var res podmanResult
	for res.args == nil {
		select {
		case res = <-played:
		case <-time.After(50 * time.Millisecond):
			if dbUp.IsZero() {
				if c, err := net.DialTimeout("tcp", db, 200*time.Millisecond); err == nil {
					c.Close()
					dbUp = time.Now()
				}
			}
		}
	}
	require.Equal(t, 0, res.code, "%s", res)
	require.False(t, dbUp.IsZero(), "postgres never listened while kube play ran: the init container did not wait for it")
	t.Logf("kube play returned after %v; postgres listened after %v", time.Since(start).Round(time.Millisecond), dbUp.Sub(start).Round(time.Millisecond))
	assert.GreaterOrEqual(t, dbUp.Sub(start), 3*time.Second, "postgres listens 5s after its start")

	started, err := time.Parse(time.RFC3339Nano, p.inspect(t, ctx, orders, `{{.State.StartedAt.Format "2006-01-02T15:04:05.999999999Z07:00"}}`))
	require.NoError(t, err)
	assert.True(t, started.After(dbUp.Add(-500*time.Millisecond)), "orders started at %v, before postgres listened at %v", started, dbUp)

	wait := k.container(1, "wait-for-deps")
	assert.Equal(t, 0, p.exitCode(t, ctx, wait))
	es := lifecycledLogs(p.logs(t, ctx, wait))
	for _, target := range []string{"tcp://" + db, "http://" + db + "/"} {
		up := findLogs(es, "dependency up", "target", target)
		if assert.Len(t, up, 1, "init container log: %v", es) {
			attempts, _ := up[0]["attempt"].(float64)
			assert.Greater(t, attempts, 1.0, "%s was up at the first attempt: nothing was waited for", target)
		}
	}

	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", k.ports[19090])
	eventually(t, ctx, 100*time.Millisecond, "orders /readyz 200", func() bool { return statusOf(readyz) == http.StatusOK })
	k.stop(t, ctx, p, 30)
	assert.Equal(t, 0, p.exitCode(t, ctx, orders))
	assert.Equal(t, 0, p.exitCode(t, ctx, k.container(0, "postgres")))
	k.down(t, ctx, p)
}

// kubeNativeSidecar: the app's lifecycled waits for the sidecar's
// /startupz, which turns 200 after the sidecar's postStart hook; both stop
// cleanly.
func kubeNativeSidecar(t *testing.T, p *podman, k *kubePlay) {
	ctx := testContext(t, 3*time.Minute)
	k.played(t, ctx, p)
	proxy, shop := k.container(0, "proxy"), k.container(0, "shop")
	p.execOK(t, ctx, shop, "wget", "-qO-", "http://127.0.0.1:9090/readyz")
	assert.Equal(t, "ok", strings.TrimSpace(p.execOK(t, ctx, shop, "wget", "-qO-", "http://127.0.0.1:9091/startupz")))

	pes, ses := lifecycledLogs(p.logs(t, ctx, proxy)), lifecycledLogs(p.logs(t, ctx, shop))
	hook := findLogs(pes, "hook succeeded", "hook", "postStart")
	up := findLogs(ses, "dependency up", "target", "http://127.0.0.1:9091/startupz")
	child := findLogs(ses, "child started")
	require.Len(t, hook, 1, "proxy log: %v", pes)
	require.Len(t, up, 1, "shop log: %v", ses)
	require.Len(t, child, 1, "shop log: %v", ses)
	assert.False(t, child[0].time(t).Before(hook[0].time(t)),
		"the app started (%v) before the sidecar's postStart hook finished (%v)", child[0].time(t), hook[0].time(t))

	took := k.stop(t, ctx, p, 30)
	assert.GreaterOrEqual(t, took, 5*time.Second, "shop drains 5s")
	assert.Equal(t, 0, p.exitCode(t, ctx, shop))
	assert.Equal(t, 0, p.exitCode(t, ctx, proxy), "the proxy's 143 is mapped to 0")
	k.down(t, ctx, p)
}

// kubeJobWithSidecar: main ends by itself; the proxy follows through
// --exit-with; both exit 0; tombstones and the hook log are on the
// emptyDir volume.
func kubeJobWithSidecar(t *testing.T, p *podman, k *kubePlay) {
	ctx := testContext(t, 3*time.Minute)
	k.played(t, ctx, p)
	main, proxy := k.container(0, "main"), k.container(0, "proxy")
	eventually(t, ctx, 250*time.Millisecond, "both containers to exit", func() bool {
		return p.inspect(t, ctx, main, "{{.State.Status}}") == "exited" && p.inspect(t, ctx, proxy, "{{.State.Status}}") == "exited"
	})
	assert.Equal(t, 0, p.exitCode(t, ctx, main))
	assert.Equal(t, 0, p.exitCode(t, ctx, proxy), "the proxy's 143 is mapped to 0")
	finished := func(c string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, p.inspect(t, ctx, c, `{{.State.FinishedAt.Format "2006-01-02T15:04:05.999999999Z07:00"}}`))
		require.NoError(t, err)
		return ts
	}
	assert.False(t, finished(proxy).Before(finished(main)), "the sidecar must end after main")
	assert.NotEmpty(t, findLogs(lifecycledLogs(p.logs(t, ctx, proxy)), "stopping: watched containers exited"))

	require.Len(t, k.volumes, 1)
	dir := strings.TrimSpace(p.must(t, ctx, "volume", "inspect", "--format", "{{.Mountpoint}}", k.volumes[0]))
	for _, name := range []string{"main", "proxy"} {
		var tomb struct {
			Name, Phase string
			ExitCode    *int
		}
		b, err := os.ReadFile(filepath.Join(dir, name+".json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &tomb))
		assert.Equal(t, name, tomb.Name)
		assert.Equal(t, "exited", tomb.Phase)
		if assert.NotNil(t, tomb.ExitCode, "%s", b) {
			assert.Equal(t, 0, *tomb.ExitCode)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "proxy.hooks.log"))
	require.NoError(t, err)
	var preStop []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &e), "hook log line %q", l)
		if e["hook"] == "preStop" {
			preStop = append(preStop, e)
		}
	}
	if assert.Len(t, preStop, 1, "hook log:\n%s", b) {
		assert.Equal(t, "proxy: flushing buffers\n", preStop[0]["output"])
		assert.EqualValues(t, 0, preStop[0]["exit_code"])
	}
	k.down(t, ctx, p)
}

// kubeExecProbes: `lifecycled probe` works as an exec probe in an image
// with no shell.
func kubeExecProbes(t *testing.T, p *podman, k *kubePlay) {
	ctx := testContext(t, 3*time.Minute)
	k.played(t, ctx, p)
	static := k.container(0, "static")
	p.execOK(t, ctx, static, "/lifecycled", "probe", "tcp://127.0.0.1:8080")

	res := p.run(ctx, "exec", static, "/lifecycled", "probe", "--timeout", "2s", "http://127.0.0.1:8080/")
	assert.Equal(t, 0, res.code, "%s", res)
	res = p.run(ctx, "exec", static, "/lifecycled", "probe", "tcp://127.0.0.1:8081")
	assert.Equal(t, 1, res.code, "%s", res)
	assert.Contains(t, res.stderr, "tcp://127.0.0.1:8081 is down")
	for _, shell := range [][]string{{"sh", "-c", "true"}, {"/bin/sh", "-c", "true"}, {"/busybox", "true"}} {
		res = p.run(ctx, append([]string{"exec", static}, shell...)...)
		assert.NotEqual(t, 0, res.code, "the image has a shell: %s", res)
	}

	took := k.stop(t, ctx, p, 30)
	assert.GreaterOrEqual(t, took, 2*time.Second, "drain delay 2s")
	assert.Equal(t, 0, p.exitCode(t, ctx, static), "httpd's 143 is mapped to 0")
	k.down(t, ctx, p)
}
