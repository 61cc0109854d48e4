package integration

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/lifecycled/lifecycled/internal/proctest"
)

// TestDrainReport: a real stop, as PID 1 and not, of an app whose port two
// clients hold connections to, one of them sending a request byte during
// the drain, and that ignores SIGTERM: one "drain report" line says when
// the last request byte came, that both connections were open at the stop
// signal and at SIGKILL, that SIGKILL was needed and how much of the 30 s
// termination grace period the stop took; /metrics shows the connections
// at the stop signal during the grace period (and passes promtool); the
// termination message ends with the same report.
func TestDrainReport(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, 60*time.Second)
		dir := t.TempDir()
		port := proctest.HoldingServer(t)
		var clients []net.Conn
		for range 2 {
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			clients = append(clients, c)
		}
		ep, addr := newEndpoints(t)
		termLog := filepath.Join(dir, "termination-log")
		p := start(t, options{mode: m, dir: dir, env: quickExit()}, "--listen", addr,
			"--ready", "tcp://127.0.0.1:"+strconv.Itoa(port), "--ready-period", "100ms",
			"--drain-delay", "1s", "--grace-period", "2s", "--termination-grace-period", "30s", "--termination-log", termLog,
			"--", "sh", "-c", `trap '' TERM; touch ready; while :; do sleep 0.05; done`)
		require.NotNil(t, p)
		require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))

		require.NoError(t, p.signal(ctx, syscall.SIGTERM))
		sent := time.Now()
		time.Sleep(300 * time.Millisecond) // a request byte some time into the drain, not a wait for an event
		_, err := clients[0].Write([]byte("GET / HTTP/1.1\r\n"))
		require.NoError(t, err)
		wrote := time.Since(sent)

		var s metricsScrape
		require.NoError(t, poll(ctx, func() bool {
			s, err = scrape(ctx, ep)
			return err == nil && s.value("lifecycled_drain_connections_at_stop_signal") == 2
		}), "the stop signal's count never showed: %v\n%s", err, s.text)
		out, err := promtoolCheck(ctx, s.text)
		assert.NoError(t, err, "promtool check metrics: %s", out)
		assert.Empty(t, out, "promtool check metrics has something to say")

		res := p.wait(ctx)
		require.Equal(t, 137, res.code, "stderr:\n%s", res.stderr)
		reports := findLogs(lifecycledLogs(res.stderr), "drain report")
		require.Len(t, reports, 1, "stderr:\n%s", res.stderr)
		r := reports[0]
		assert.EqualValues(t, 2, r["connections_at_stop_signal"], "%v", r)
		assert.EqualValues(t, 2, r["connections_at_sigkill"], "%v", r)
		assert.Equal(t, true, r["sigkill"])
		assert.EqualValues(t, len("GET / HTTP/1.1\r\n"), r["request_bytes"], "%v", r)
		last, ok := r["last_request_byte_after_seconds"].(float64)
		require.True(t, ok, "%v", r)
		assert.InDelta(t, wrote.Seconds(), last, 0.25, "the byte was written %s after SIGTERM", wrote)
		assert.NotContains(t, r, "last_arrival_after_seconds", "no new connection came")
		took := r["took_seconds"].(float64)
		assert.GreaterOrEqual(t, took, 3.0, "1 s drain + 2 s grace")
		assert.InDelta(t, took/30, r["grace_used"], 0.01)
		assert.EqualValues(t, 30, r["termination_grace_period_seconds"])

		msg, err := os.ReadFile(termLog)
		require.NoError(t, err)
		lines := strings.Split(string(msg), "\n")
		require.Len(t, lines, 2, "%q", msg)
		assert.True(t, strings.HasPrefix(lines[0], "child killed by SIGKILL (phase draining)"), lines[0])
		assert.Regexp(t, `^drain report: last connection none, last request byte \+0\.\d+s; stop signal at \+1(\.\d+)?s with 2 connection\(s\) open; SIGKILL needed, 2 connection\(s\) cut; took 3(\.\d+)?s of 30s grace \(1\d%\)$`, lines[1])
	})
}

// TestExampleEventsRBAC: the RBAC example of --events decodes strictly as
// the official types and grants the service account create on events and
// nothing else.
func TestExampleEventsRBAC(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "rbac", "drain-events.yaml"))
	require.NoError(t, err)
	docs := splitYAML(b)
	require.Len(t, docs, 3)
	var sa corev1.ServiceAccount
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	for i, into := range []any{&sa, &role, &binding} {
		require.NoError(t, yaml.UnmarshalStrict(docs[i], into), "document %d", i+1)
	}
	assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}}}, role.Rules)
	assert.Equal(t, rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name}, binding.RoleRef)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name}}, binding.Subjects)
	for _, env := range []string{"POD_NAME", "POD_NAMESPACE", "POD_UID", "--events"} {
		assert.Contains(t, string(b), env, "the example shows what the container needs")
	}
}
