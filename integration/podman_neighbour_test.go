package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/proctest"
)

// testPodmanDeadNeighbour: the Job-with-sidecar pod of
// examples/job-with-sidecar.yaml, two containers of one podman pod sharing
// a volume, and main's lifecycled (PID 1 of its container) SIGKILLed as the
// OOM killer would: its tombstone still says running, but the kernel drops
// its lock across the containers, and the proxy (--exit-with main) stops
// within its drain delay + 2 s and says why.
func testPodmanDeadNeighbour(t *testing.T, p *podman) {
	ctx := testContext(t, 3*time.Minute)
	pod, vol := p.name(), p.name()
	main, proxy := pod+"-main", pod+"-proxy"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p.run(ctx, "pod", "rm", "-f", "-t", "0", pod)
		p.run(ctx, "volume", "rm", "-f", vol)
	})
	p.must(t, ctx, "volume", "create", vol)
	p.must(t, ctx, "pod", "create", "--name", pod, "--network", "none")
	const drainDelay = time.Second
	// The proxy starts first, as sidecars usually do: main's tombstone is
	// not there yet, and it must keep waiting.
	p.must(t, ctx, "run", "-d", "--pod", pod, "--name", proxy, "-v", vol+":/lifecycle", p.demoImage,
		"--tombstone-dir", "/lifecycle", "--name", "proxy", "--exit-with", "main",
		"--drain-delay", drainDelay.String(), "--termination-log", "/lifecycle/proxy.termination-log",
		"--exit-code-map", "143:0", "--", "sleep", "300")
	p.must(t, ctx, "run", "-d", "--pod", pod, "--name", main, "-v", vol+":/lifecycle", p.demoImage,
		"--tombstone-dir", "/lifecycle", "--name", "main", "--", "sleep", "300")

	dir := strings.TrimSpace(p.must(t, ctx, "volume", "inspect", "--format", "{{.Mountpoint}}", vol))
	phase := func(name string) string {
		var tomb struct{ Phase string }
		b, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err != nil || json.Unmarshal(b, &tomb) != nil {
			return ""
		}
		return tomb.Phase
	}
	eventually(t, ctx, 100*time.Millisecond, "main's tombstone to say running", func() bool { return phase("main") == "running" })
	// The proxy takes a free lock for a death only once it has seen it
	// held: two of its looks at the lock, so the first has ended.
	require.NoError(t, proctest.WaitReads(ctx, filepath.Join(dir, "main.lock"), 2), "the proxy never looked at main's lock")
	require.Equal(t, "running", p.inspect(t, ctx, proxy, "{{.State.Status}}"), "the proxy stopped while main ran")

	p.must(t, ctx, "kill", "-s", "KILL", main)
	eventually(t, ctx, 100*time.Millisecond, "the proxy to exit", func() bool {
		return p.inspect(t, ctx, proxy, "{{.State.Status}}") == "exited"
	})
	assert.Equal(t, 137, p.exitCode(t, ctx, main))
	assert.Equal(t, "running", phase("main"), "a SIGKILLed lifecycled cannot write exited")
	assert.Equal(t, 0, p.exitCode(t, ctx, proxy), "the proxy's 143 is mapped to 0")

	finished := func(c string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, p.inspect(t, ctx, c, `{{.State.FinishedAt.Format "2006-01-02T15:04:05.999999999Z07:00"}}`))
		require.NoError(t, err)
		return ts
	}
	took := finished(proxy).Sub(finished(main))
	t.Logf("proxy ended %s after main was killed (drain delay %s)", took, drainDelay)
	assert.Less(t, took, drainDelay+2*time.Second)
	assert.GreaterOrEqual(t, took, drainDelay-100*time.Millisecond, "the proxy skipped its drain delay")

	const why = "main died without writing exited (lock released)"
	assert.NotEmpty(t, findLogs(lifecycledLogs(p.logs(t, ctx, proxy)), "stopping: "+why))
	msg, err := os.ReadFile(filepath.Join(dir, "proxy.termination-log"))
	require.NoError(t, err)
	assert.Contains(t, string(msg), why)
	assert.Equal(t, "exited", phase("proxy"))
}
