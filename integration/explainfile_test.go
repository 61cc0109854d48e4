package integration

// `lifecycled explain -f` run as a user (or the real-cluster tests) runs it:
// the built binary on a manifest file and on stdin.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
