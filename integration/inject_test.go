package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const stockDeployment = `# a stock image, no lifecycled in it
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
        command: ["nginx", "-g", "daemon off;"]
        readinessProbe:
          httpGet:
            path: /
            port: 80
        lifecycle:
          preStop:
            exec:
              command: ["sleep", "5"]
`

// runStdin runs argv with stdin and returns the exit code, stdout, stderr.
func runStdin(t *testing.T, stdin string, argv ...string) (int, string, string) {
	t.Helper()
	return runEnv(t, nil, stdin, argv...)
}

// runEnv is runStdin with env as the whole environment (nil: the test's).
func runEnv(t *testing.T, env []string, stdin string, argv ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(testContext(t, 60e9), argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, out.String(), errb.String()
}

// TestInjectBinary: the binary injects from stdin, the result passes
// explain -f, uninject (and inject --uninject) gives the input back byte
// for byte, and a second inject prints the same bytes; installed as
// kubectl-lifecycled (kubectl's plugin name), it does the same.
func TestInjectBinary(t *testing.T) {
	bin := lifecycledBin(t)
	code, out, stderr := runStdin(t, stockDeployment, bin, "inject", "-f", "-")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	assert.Contains(t, out, "- /lifecycled-bin/lifecycled")
	assert.Contains(t, out, "lifecycled.dev/injected")

	dir := t.TempDir()
	injected := filepath.Join(dir, "injected.yaml")
	require.NoError(t, os.WriteFile(injected, []byte(out), 0o644))
	code, explained, stderr := runCmd(t, bin, "explain", "-f", injected)
	assert.Equal(t, 0, code, explained+stderr)
	assert.Contains(t, explained, "No problems found.")

	for _, argv := range [][]string{{bin, "uninject", "-f", injected}, {bin, "inject", "--uninject", "-f", injected}} {
		code, back, stderr := runCmd(t, argv...)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, stockDeployment, back, "%v gives the original back", argv[1:])
	}
	code, again, stderr := runCmd(t, bin, "inject", "-f", injected)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, out, again, "a second inject changes nothing")

	plugin := filepath.Join(dir, "kubectl-lifecycled")
	require.NoError(t, os.Symlink(bin, plugin))
	code, viaPlugin, stderr := runStdin(t, stockDeployment, plugin, "inject", "-f", "-")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, out, viaPlugin)
}

// TestInjectErrors: bad flags and files exit 2 with one line; problems
// of the manifest exit 1 with one line each; nothing is printed on
// stdout either way.
func TestInjectErrors(t *testing.T) {
	bin := lifecycledBin(t)
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	noCmd := write("nocmd.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: x\n  - name: b\n    image: y\n")
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		lines int
		cause []string
	}{
		{"no -f", []string{"inject"}, 2, 1, []string{"-f needs a FILE"}},
		{"missing file", []string{"inject", "-f", filepath.Join(dir, "nope.yaml")}, 2, 1, []string{"nope.yaml"}},
		{"unknown flag", []string{"inject", "-f", noCmd, "--bogus"}, 2, 1, []string{"bogus"}},
		{"bad entrypoint", []string{"inject", "-f", noCmd, "--entrypoint", "a=/app"}, 2, 1, []string{"entrypoint", "JSON array"}},
		{"entrypoint of no container", []string{"inject", "-f", noCmd, "--entrypoint", `zz=["/app"]`}, 2, 1, []string{"--entrypoint zz", "a, b"}},
		{"container of no name", []string{"inject", "-f", noCmd, "--container", "zz"}, 2, 1, []string{"--container zz"}},
		{"not YAML", []string{"inject", "-f", write("bad.yaml", "kind: [Pod\n")}, 2, 1, []string{"line"}},
		{"no workload", []string{"inject", "-f", write("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n")}, 2, 1, []string{"no Pod"}},
		{"no command: a problem per container", []string{"inject", "-f", noCmd}, 1, 2, []string{"container a", "container b", "--entrypoint", "--resolve"}},
		{"one --entrypoint of two", []string{"inject", "-f", noCmd, "--entrypoint", `a=["/app"]`}, 1, 1, []string{"container b"}},
		{"bad annotation", []string{"uninject", "-f", write("ann.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    lifecycled.dev/injected: nope\nspec:\n  containers:\n  - name: a\n    image: x\n")}, 2, 1, []string{"lifecycled.dev/injected"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCmd(t, append([]string{bin}, tc.args...)...)
			assert.Equal(t, tc.code, code, stderr)
			assert.Empty(t, out, "nothing on stdout")
			assert.Len(t, lines(stderr), tc.lines, stderr)
			for _, c := range tc.cause {
				assert.Contains(t, stderr, c)
			}
		})
	}
	code, out, stderr := runCmd(t, bin, "inject", "-f", noCmd, "--entrypoint", `a=["/app"]`, "--entrypoint", `b=["/b","$(X)"]`)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "- $$(X)", "the image's command is not expanded by the kubelet, and is not after inject")
}
