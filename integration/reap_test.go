package integration

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// orphanScript makes 500 orphans: each `sleep` is started by a subshell
// that exits at once, so it is re-parented to lifecycled (PID 1 of the
// namespace, or the subreaper). The child then reports how many of them
// lifecycled had adopted, waits until every one is gone (exited and reaped:
// no zombie whose parent is lifecycled) and reports what is left. It writes
// ./counted and waits for ./go before exiting, so that the test can scrape
// /metrics while lifecycled still runs.
const orphanScript = `
children() { cat /proc/[0-9]*/stat 2>/dev/null | awk -v P=$PPID '$4 == P { n++; if ($3 == "Z") z++ } END { print n+0, z+0 }'; }
i=0; while [ $i -lt 500 ]; do (sleep 1 &); i=$((i+1)); done
set -- $(children); echo "adopted=$(($1 - 1))"
tries=0
while :; do
	set -- $(children)
	# $1 counts this shell too.
	if [ "$1" -eq 1 ] && [ "$2" -eq 0 ]; then break; fi
	tries=$((tries+1)); [ $tries -gt 600 ] && break
	sleep 0.05
done
echo "left=$(($1 - 1)) zombies=$2"
: > counted
while [ ! -e go ]; do sleep 0.02; done
`

// TestReapOrphans: 500 orphans are adopted and reaped by lifecycled, none
// is left a zombie, and lifecycled_zombies_reaped_total counts exactly
// them. As PID 1 that is the init's duty; as a plain process lifecycled is
// a child subreaper.
func TestReapOrphans(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, time.Minute)
		dir := t.TempDir()
		addr := fmt.Sprintf("127.0.0.1:%d", loopbackPort(t))
		p := start(t, options{mode: m, dir: dir}, "--listen", addr, "--", "sh", "-c", orphanScript)
		require.NotNil(t, p)
		require.NoError(t, waitFile(ctx, filepath.Join(dir, "counted")))

		code, body, err := fetch(ctx, "GET", "http://"+addr+"/metrics")
		require.NoError(t, err)
		require.Equal(t, 200, code)
		reaped := regexp.MustCompile(`(?m)^lifecycled_zombies_reaped_total (\S+)$`).FindStringSubmatch(body)
		if assert.NotNil(t, reaped, "lifecycled_zombies_reaped_total in /metrics") {
			n, _ := strconv.ParseFloat(reaped[1], 64)
			assert.Equal(t, 500.0, n, "every orphan reaped and counted, nothing else")
		}

		require.NoError(t, touch(filepath.Join(dir, "go")))
		r := p.wait(ctx)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		out := lines(r.stdout)
		require.Len(t, out, 2, "stdout: %s", r.stdout)
		adopted, _ := strconv.Atoi(strings.TrimPrefix(out[0], "adopted="))
		assert.Positive(t, adopted, "the orphans' parent must be lifecycled")
		assert.Equal(t, "left=0 zombies=0", out[1])
	})
}

// TestSubreaper: a grandchild orphaned by the child (in a session of its
// own, so it outlives the child's process group) is re-parented to
// lifecycled, not to the host's init, and reaped by it when it dies.
func TestSubreaper(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, time.Minute)
		dir := t.TempDir()
		// The intermediate shell starts the grandchild and exits: the
		// grandchild is orphaned while the child lives on.
		script := `sh -c 'setsid sh -c "echo \$\$ > gpid.tmp; mv gpid.tmp gpid; exec sleep 60" &'; exec sleep 60`
		p := start(t, options{mode: m, dir: dir}, "--", "sh", "-c", script)
		require.NotNil(t, p)
		gpid, err := readPid(ctx, filepath.Join(dir, "gpid"))
		require.NoError(t, err)
		gpid, err = p.hostPid(ctx, gpid)
		require.NoError(t, err)
		lpid, err := p.lifecycledPid(ctx)
		require.NoError(t, err)

		var st procStat
		require.NoError(t, poll(ctx, func() bool {
			st, err = readStat(gpid)
			return err == nil && st.ppid != 0 && st.comm == "sleep"
		}), "the grandchild runs sleep")
		assert.Equal(t, lpid, st.ppid, "the orphan's parent is lifecycled")

		require.NoError(t, syscall.Kill(gpid, syscall.SIGKILL))
		assert.NoError(t, poll(ctx, func() bool { return gone(gpid) }), "the orphan was reaped (no zombie left)")
		for _, c := range childrenOf(lpid) {
			assert.NotEqual(t, byte('Z'), c.state, "zombie child of lifecycled: %+v", c)
		}

		require.NoError(t, p.signal(ctx, syscall.SIGTERM))
		r := p.wait(ctx)
		assert.Equal(t, 143, r.code, "stderr: %s", r.stderr)
	})
}
