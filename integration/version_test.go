package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVersionPlainBuild: a plain `go build` in a git checkout, with the Go
// command's own defaults (GOTOOLCHAIN=auto, VCS stamping on), uses the
// toolchain go.mod selects (go1.26.10, whose standard library has the
// fixes) and reports the module's pseudo-version and the commit, not
// "dev (commit unknown)".
func TestVersionPlainBuild(t *testing.T) {
	root, err := moduleRoot()
	require.NoError(t, err)
	src := t.TempDir()
	// A fresh checkout of the working tree: its files, one commit.
	copyTree := exec.Command("sh", "-c",
		`git -C "$1" ls-files -z -co --exclude-standard | tar -C "$1" --null -T - -cf - | tar -C "$2" -xf -`, "sh", root, src)
	out, err := copyTree.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, args := range [][]string{
		{"init", "-q"}, {"add", "-A"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "test"},
	} {
		out, err := exec.Command("git", append([]string{"-C", src}, args...)...).CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
	}
	rev, err := exec.Command("git", "-C", src, "rev-parse", "HEAD").Output()
	require.NoError(t, err)

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOTOOLCHAIN=") && !strings.HasPrefix(kv, "GOFLAGS=") && !strings.HasPrefix(kv, "GOENV=") {
			env = append(env, kv)
		}
	}
	// The defaults of a Go distribution, whatever this machine's go env
	// files say (GOENV=off; GOFLAGS=-buildvcs=false there would hide the
	// commit). GOPROXY stays this process's: on a fresh machine a plain
	// build fetches the toolchain and modules it lacks, as a user's would.
	env = append(env, "GOENV=off", "GOTOOLCHAIN=auto", "GOFLAGS=")
	bin := filepath.Join(t.TempDir(), "lifecycled")
	build := exec.Command("go", "build", "-o", bin, "./cmd/lifecycled")
	build.Dir, build.Env = src, env
	out, err = build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	goVersion := exec.Command("go", "version", "-m", bin)
	goVersion.Env = env
	out, err = goVersion.Output()
	require.NoError(t, err)
	assert.Contains(t, strings.SplitN(string(out), "\n", 2)[0], "go1.26.10", "the toolchain go.mod selects:\n%s", out)

	out, err = exec.Command(bin, "version").Output()
	require.NoError(t, err)
	v := strings.TrimSpace(string(out))
	assert.NotContains(t, v, "dev")
	assert.NotContains(t, v, "unknown")
	assert.Contains(t, v, "commit "+strings.TrimSpace(string(rev)))
	assert.Regexp(t, regexp.MustCompile(`^lifecycled v0\.0\.0-\d{14}-[0-9a-f]{12} `), v)
	t.Logf("FIGURE plain go build: %s", v)
}
