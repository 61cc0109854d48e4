package integration

// `lifecycled explain -f` run as a user (or the real-cluster tests) runs it:
// the built binary on a manifest file and on stdin.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exampleImageFlags tell explain -f that the example images' ENTRYPOINT is
// lifecycled.
var exampleImageFlags = []string{"--image", "localhost/lifecycled", "--image", "localhost/lifecycled-demo"}

// explainManifest runs `lifecycled explain -f FILE [ARGS...]` with FILE "-"
// when stdin is not nil, and returns its exit code and output.
func explainManifest(t testing.TB, file string, stdin []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(lifecycledBin(t), append([]string{"explain", "-f", file}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String(), errOut.String()
	}
	require.NoError(t, err)
	return 0, out.String(), errOut.String()
}

func TestExplainFileBinary(t *testing.T) {
	kube, _ := exampleFiles(t)
	root := repoRoot(t)
	var all []byte
	for _, f := range kube {
		t.Run(f, func(t *testing.T) {
			code, out, errOut := explainManifest(t, filepath.Join(root, f), nil, exampleImageFlags...)
			assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			assert.Contains(t, out, "Stop sequence")
			assert.True(t, strings.HasSuffix(out, "No problems found.\n"), out)
		})
		b, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		all = append(append(all, b...), "\n---\n"...)
	}

	t.Run("every example on stdin", func(t *testing.T) {
		code, out, errOut := explainManifest(t, "-", all, exampleImageFlags...)
		assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
		checked := strings.Count(out, "(terminationGracePeriodSeconds ")
		assert.GreaterOrEqual(t, checked, len(kube), "every example has a container lifecycled runs")
		assert.Equal(t, checked, strings.Count(out, "Budget: fits"), "one verdict per checked container")
	})

	t.Run("problems on stdin", func(t *testing.T) {
		manifest := `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: web
    image: app
    command: [/lifecycled, --listen, ":9090", --drain-delay, 5s, --, /app]
    lifecycle: {preStop: {sleep: {seconds: 3}}}
    readinessProbe: {httpGet: {path: /readyz, port: 9091}}
    livenessProbe: {httpGet: {path: /readyz, port: 9090}}
`
		code, out, errOut := explainManifest(t, "-", []byte(manifest))
		assert.Equal(t, 1, code)
		assert.Empty(t, errOut)
		_, problems, ok := strings.Cut(out, "Problems:\n")
		require.True(t, ok, out)
		lines := strings.Split(strings.TrimSpace(problems), "\n")
		require.Len(t, lines, 3, problems)
		assert.Contains(t, lines[0], "stdin: Pod/web container web: the kubelet leaves lifecycled 7s of terminationGracePeriodSeconds 10s (its SIGTERM comes at 3s: the kubelet's preStop sleep 3s): the stop sequence takes up to 15s")
		assert.Contains(t, lines[1], "stdin: Pod/web container web: readinessProbe asks port 9091 for /readyz, but lifecycled listens on :9090")
		assert.Contains(t, lines[2], "stdin: Pod/web container web: livenessProbe asks lifecycled for /readyz")
	})

	t.Run("not YAML", func(t *testing.T) {
		code, out, errOut := explainManifest(t, "-", []byte("kind: Pod\nspec: [\n"))
		assert.Equal(t, 2, code)
		assert.Empty(t, out)
		assert.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
		assert.True(t, strings.HasPrefix(errOut, "lifecycled: explain -f stdin: line "), errOut)
	})

	t.Run("missing file", func(t *testing.T) {
		code, _, errOut := explainManifest(t, filepath.Join(t.TempDir(), "nope.yaml"), nil)
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, "nope.yaml: no such file or directory")
	})
}

// TestExplainFileBombs (issue 17): small YAML inputs that cost the YAML
// library or the $(VAR) expansion minutes and gigabytes end at once with
// one line and exit 2, from explain -f and from --config alike. Before:
// 8,000 duplicate keys in 48 KB took 23 s to minutes and 4.0 GB; 40,000
// duplicate lines and a 1.9 KB Pod whose env doubles 40 times crashed out
// of memory with a 150-line trace; 700,000 documents took 8.5 s.
func TestExplainFileBombs(t *testing.T) {
	t.Parallel()
	var doubling strings.Builder
	doubling.WriteString("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: i\n    command: [lifecycled, --, app, $(V40)]\n    env:\n    - {name: V0, value: xxxxxxxx}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&doubling, "    - {name: V%d, value: \"$(V%d)$(V%d)\"}\n", i, i-1, i-1)
	}
	dir := t.TempDir()
	dupConfig := filepath.Join(dir, "dup.yaml")
	require.NoError(t, os.WriteFile(dupConfig, []byte("drain:\n  delay: 5s\ndrain:\n  timeout: 10s\n"), 0o644))
	tests := []struct {
		name  string
		input string
		args  []string // instead of explain -f -
		want  string
	}{
		{name: "8,000 duplicate keys", input: "apiVersion: v1\nkind: Pod\nmetadata:\n" + strings.Repeat(" n: p\n", 8000) + "spec: {}\n",
			want: `line 5: key "n" given twice in one mapping (first at line 4)`},
		{name: "40,000 duplicate lines", input: "apiVersion: v1\nkind: Pod\nmetadata:\n" + strings.Repeat("  name: p\n", 40000) + "spec: {}\n",
			want: `line 5: key "name" given twice in one mapping (first at line 4)`},
		{name: "$(VAR) doubling", input: doubling.String(), want: "env V15: longer than 128 KiB after $(VAR) expansion"},
		{name: "700,000 documents", input: strings.Repeat("---\n{}\n", 700000), want: "larger than 1 MiB"},
		{name: "documents under the size limit", input: strings.Repeat("---\n{}\n", 140000), want: "more than 1000 YAML documents"},
		{name: "an endless file", args: []string{"explain", "-f", "/dev/zero"}, want: "larger than 1 MiB"},
		{name: "--config duplicate keys, explain", args: []string{"explain", "--config", dupConfig, "--", "app"}, want: `line 3: key "drain" given twice in one mapping (first at line 1)`},
		{name: "--config duplicate keys, run", args: []string{"--config", dupConfig, "--", "true"}, want: `line 3: key "drain" given twice in one mapping (first at line 1)`},
		{name: "--config endless", args: []string{"--config", "/dev/zero", "--", "true"}, want: "larger than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Generous for a loaded machine; the bombs took minutes.
			ctx := testContext(t, 30*time.Second)
			args := tt.args
			if args == nil {
				args = []string{"explain", "-f", "-"}
			}
			// Through GNU time: a child of this (large) test process
			// inherits its peak RSS at exec, so the wait4 figure of a
			// direct child is this process's; time forks from a small one.
			rssFile := filepath.Join(t.TempDir(), "maxrss")
			cmd := exec.CommandContext(ctx, "/usr/bin/time", append([]string{"-f", "%M", "-o", rssFile, lifecycledBin(t)}, args...)...)
			cmd.Stdin = strings.NewReader(tt.input)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			began := time.Now()
			err := cmd.Run()
			took := time.Since(began)
			require.NoError(t, ctx.Err(), "still running after %v", took)
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "stdout:\n%s", out.String())
			assert.Equal(t, 2, exit.ExitCode())
			assert.Empty(t, out.String())
			assert.Equal(t, 1, strings.Count(errOut.String(), "\n"), "one line: %q", errOut.String())
			assert.Contains(t, errOut.String(), tt.want)
			b, err := os.ReadFile(rssFile)
			require.NoError(t, err)
			// The last line: time puts "Command exited with non-zero
			// status 2" before it.
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			rss, err := strconv.ParseInt(lines[len(lines)-1], 10, 64) // KiB
			require.NoError(t, err, "GNU time wrote %q", b)
			assert.Less(t, rss, int64(200<<10), "max RSS %d KiB", rss)
			t.Logf("%v, max RSS %d KiB", took.Round(time.Millisecond), rss)
		})
	}
}

// TestExplainFileNamesTraps (issue 17): the built binary names a Job's
// --exit-with under restartPolicy OnFailure and a termination message the
// kubelet cuts in a pod of 4 containers, exit 1.
func TestExplainFileNamesTraps(t *testing.T) {
	t.Parallel()
	manifest := `apiVersion: batch/v1
kind: Job
metadata: {name: report}
spec:
  template:
    spec:
      restartPolicy: OnFailure
      volumes: [{name: lifecycle, emptyDir: {}}]
      containers:
      - name: main
        image: app:1
        command: [lifecycled, --tombstone-dir, /lifecycle, --name, main, --termination-log, /dev/termination-log, --termination-log-tail, --, /report]
        volumeMounts: [{name: lifecycle, mountPath: /lifecycle}]
      - name: proxy
        image: proxy:1
        command: [lifecycled, --tombstone-dir, /lifecycle, --exit-with, main, --, /proxy]
        volumeMounts: [{name: lifecycle, mountPath: /lifecycle}]
      - {name: a, image: a}
      - {name: b, image: b}
`
	code, out, errOut := explainManifest(t, "-", []byte(manifest))
	assert.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Empty(t, errOut)
	assert.Contains(t, out, "stdin: Job/report container main: --termination-log-max 4096, but in a pod of 4 containers and init containers the kubelet keeps only the first 3072 bytes of each termination message (12288 / 4): the newest 1024 bytes of the stderr tail, where a panic ends, would be cut away; give --termination-log-max 3072\n")
	assert.Contains(t, out, "stdin: Job/report container proxy: --exit-with in a pod with restartPolicy OnFailure: when main fails, the kubelet restarts it")
	assert.Contains(t, out, "make it a native sidecar instead: an init container with restartPolicy: Always")

	fixed := strings.Replace(manifest, "--termination-log-tail,", "--termination-log-tail, --termination-log-max, 3072,", 1)
	fixed = strings.Replace(fixed, "restartPolicy: OnFailure", "restartPolicy: Never", 1)
	code, out, errOut = explainManifest(t, "-", []byte(fixed))
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
}
