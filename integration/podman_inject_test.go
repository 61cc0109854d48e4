package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testPodmanInject: a stock pod, injected with `lifecycled inject` and
// played as is: the init container (the FROM scratch lifecycled image, as
// user 65532 on a read-only root) copies the binary into the emptyDir, the
// app container runs it as PID 1 with the app as its child, /readyz
// follows the app, and a stop drains for the preStop sleep's 3s before the
// app gets SIGTERM and exits 0. No image was built for it.
func testPodmanInject(t *testing.T, p *podman) {
	ctx := testContext(t, 3*time.Minute)
	stock := filepath.Join(repoRoot(t), "integration", "testdata", "podman", "inject-stock.yaml")
	code, injected, stderr := runCmd(t, lifecycledBin(t), "inject", "-f", stock, "--lifecycled-image", "localhost/lifecycled:dev")
	require.Equal(t, 0, code, stderr)
	// podman 4.3's kube play refuses annotation values of more than 63
	// characters (a label's limit; the API server allows 256 KiB of
	// annotations), so the record of what inject changed is replaced, for
	// podman only, with podman's own annotation that keeps the init
	// container once it has run: its default, removing it, fails now and
	// then with "failed to remove once init container ... it is running"
	// when it exits as fast as install does (podman 4.3's race).
	re := regexp.MustCompile(`(?m)^(\s+)lifecycled\.dev/injected: .*$`)
	require.Len(t, re.FindAllString(injected, -1), 1)
	played := re.ReplaceAllString(injected, "${1}io.podman.annotations.init.container.type: always")
	file := filepath.Join(t.TempDir(), "inject-stock.yaml")
	require.NoError(t, os.WriteFile(file, []byte(played), 0o644))

	k := p.play(t, file)
	res := k.start(t, ctx, p)
	require.Equal(t, 0, res.code, "%s", res)
	web, install := k.container(0, "web"), k.container(0, "lifecycled-install")
	// Its state is not read: podman 4.3 may report a kept init container
	// as running long after its exit.
	assert.Contains(t, p.logs(t, ctx, install), "/lifecycled-bin/lifecycled: installed")

	pid1 := p.execOK(t, ctx, web, "cat", "/proc/1/cmdline")
	assert.True(t, strings.HasPrefix(pid1, "/lifecycled-bin/lifecycled\x00"), "PID 1 is lifecycled from the volume: %q", pid1)
	ls := p.execOK(t, ctx, web, "ls", "-ln", "/lifecycled-bin/lifecycled")
	assert.Regexp(t, `^-rwxr-xr-x\s+\d+\s+65532\s+65532\s`, ls, "copied as the pod's non-root user, mode 0755")
	eventually(t, ctx, 200*time.Millisecond, "/readyz 200 once the app answers", func() bool {
		r := p.run(ctx, "exec", web, "wget", "-qO-", "http://127.0.0.1:9901/readyz")
		return r.code == 0 && strings.TrimSpace(r.stdout) == "ok"
	})

	k.stopDrained(t, ctx, p, web, 3*time.Second) // the preStop sleep's drain
}
