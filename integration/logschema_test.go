package integration

// One log schema (README "Logs"): every JSON line lifecycled writes, on
// stderr and in the hook log, checked key by key.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/logschema"
)

// goDuration is a Go duration string ("360.64µs", "2s", "1m30s"): no value
// of the schema may look like one.
var goDuration = regexp.MustCompile(`^-?([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`)

// checkSchema checks one decoded line against the schema, nested objects
// included, and returns its problems.
func checkSchema(line map[string]any) []string {
	var bad []string
	for _, k := range []string{"time", "level", "msg"} {
		if _, ok := line[k].(string); !ok {
			bad = append(bad, fmt.Sprintf("no %q string", k))
		}
	}
	if ts, _ := line["time"].(string); ts != "" {
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
			bad = append(bad, fmt.Sprintf("time %q: not RFC 3339 in UTC", ts))
		}
	}
	if lvl, _ := line["level"].(string); lvl != "" && !regexp.MustCompile(`^(debug|info|warn|error)$`).MatchString(lvl) {
		bad = append(bad, fmt.Sprintf("level %q", lvl))
	}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if !logschema.Key().MatchString(k) {
				bad = append(bad, fmt.Sprintf("key %s%s: not snake_case", prefix, k))
			}
			if strings.HasSuffix(k, "_seconds") {
				if _, ok := v.(float64); !ok {
					bad = append(bad, fmt.Sprintf("%s%s = %v: not a number", prefix, k, v))
				}
			}
			switch v := v.(type) {
			case string:
				if goDuration.MatchString(v) {
					bad = append(bad, fmt.Sprintf("%s%s = %q: a duration as a string", prefix, k, v))
				}
			case map[string]any:
				walk(prefix+k+".", v)
			}
		}
	}
	walk("", line)
	return bad
}

// jsonLines decodes every line of text; a line that is not JSON fails the
// test (lifecycled's stderr here holds nothing else).
func jsonLines(t *testing.T, what, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "%s: not a JSON line: %q", what, sc.Text())
		out = append(out, m)
	}
	return out
}

// TestLogSchema runs through every phase with debug logs (a dependency that
// comes up late, probes, hooks of both kinds, a drain, a grace period) and
// checks every line of stderr and of the hook log.
func TestLogSchema(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	dir := t.TempDir()
	hookDir := filepath.Join(dir, "hooks")
	ep, addr := newEndpoints(t)
	dep := newFlipServer(t, http.StatusServiceUnavailable)
	hook := newFlipServer(t, http.StatusOK)
	go func() { time.Sleep(700 * time.Millisecond); dep.set(http.StatusOK) }()

	p := start(t, options{env: quickExit()}, "--log-level", "debug", "--listen", addr,
		"--wait", dep.URL+"/", "--wait-interval", "100ms", "--ready", dep.URL+"/ready", "--ready-period", "100ms",
		"--live", dep.URL+"/live", "--live-period", "100ms",
		"--post-start", "echo warming", "--pre-stop-http", hook.URL+"/stop", "--drain-delay", "200ms", "--grace-period", "300ms",
		"--hook-log-dir", hookDir, "--name", "app", "--on-exit-post", hook.URL+"/quit",
		"--", "sh", "-c", `trap '' TERM; : > `+dir+`/ready; sleep 30`)
	require.NotNil(t, p)
	_, err := waitStatus(ctx, ep.url("/readyz"), http.StatusOK)
	require.NoError(t, err)
	res, _ := p.terminate(ctx)
	require.Equal(t, 137, res.code, "killed after the grace period; stderr:\n%s", res.stderr)

	stderrLines := jsonLines(t, "stderr", res.stderr)
	hookText, err := os.ReadFile(filepath.Join(hookDir, "app.hooks.log"))
	require.NoError(t, err)
	hookLines := jsonLines(t, "hook log", string(hookText))
	require.NotEmpty(t, hookLines)
	msgs := map[string]map[string]any{}
	for what, lines := range map[string][]map[string]any{"stderr": stderrLines, "hook log": hookLines} {
		for _, l := range lines {
			assert.Empty(t, checkSchema(l), "%s line %v", what, l)
			if m, ok := l["msg"].(string); ok && what == "stderr" {
				msgs[m] = l
			}
		}
	}

	// The lines that used to break the schema are there, in its shape.
	for msg, keys := range map[string][]string{
		"dependency up":       {"waited_seconds", "attempt", "target"},
		"drain delay":         {"delay_seconds"},
		"sending stop signal": {"grace_period_seconds", "signal"},
		"exiting":             {"exit_code", "reason"},
		"hook succeeded":      {"duration_seconds"},
		"starting":            {"version", "commit", "go_version", "settings"},
		"grace period over, killed the process group": {"grace_period_seconds"},
	} {
		l, ok := msgs[msg]
		if !assert.True(t, ok, "no %q line on stderr:\n%s", msg, res.stderr) {
			continue
		}
		for _, k := range keys {
			assert.Contains(t, l, k, "%q line", msg)
		}
	}
	start := msgs["starting"]
	settings, _ := start["settings"].(map[string]any)
	assert.Equal(t, 0.2, settings["drain_delay_seconds"])
	assert.Equal(t, 0.3, settings["grace_period_seconds"])
	assert.Equal(t, "app", settings["name"])
	assert.Equal(t, []any{dep.URL + "/"}, settings["wait"])
	assert.Equal(t, stderrLines[0]["msg"], "starting", "the start-up line comes first")

	var sawExec, sawHTTP bool
	for _, l := range hookLines {
		if l["msg"] == "phase" {
			continue
		}
		assert.IsType(t, float64(0), l["duration_seconds"], "%v", l)
		assert.IsType(t, "", l["start_time"], "%v", l)
		switch l["handler"] {
		case "exec":
			sawExec = true
			assert.Contains(t, l, "exit_code")
		case "httpGet":
			sawHTTP = true
			assert.Contains(t, l, "http_status")
		}
	}
	assert.True(t, sawExec && sawHTTP, "both hook kinds logged: %s", hookText)
}

// TestLogSchemaRedactsSecrets: the start-up line shows settings, not the
// passwords in their URLs.
func TestLogSchemaRedactsSecrets(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	res := runQuick(t, ctx, "--wait", "http://user:hunter2@127.0.0.1:1/", "--wait-timeout", "200ms",
		"--on-exit-post", "http://admin:s3cret@127.0.0.1:1/quit", "--", "true")
	assert.Equal(t, 124, res.code)
	line := strings.SplitN(res.stderr, "\n", 2)[0]
	assert.Contains(t, line, `"msg":"starting"`)
	assert.Contains(t, line, "user:xxxxx@127.0.0.1")
	assert.NotContains(t, res.stderr, "hunter2")
	assert.NotContains(t, res.stderr, "s3cret")
}

// TestLogSchemaOneStream: once lifecycled's logger exists, every line it
// writes is a record of it, failures included: with the default JSON format
// each line of stderr parses, passes the schema, and the cause is one error
// record naming it. Before, the postStart failure, a command not found, a
// dependency not up, a busy --listen address and `wait` giving up each
// wrote a plain "lifecycled: ..." line into the JSON stream.
func TestLogSchemaOneStream(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = busy.Close() })
	down := fmt.Sprintf("tcp://127.0.0.1:%d", loopbackPort(t))
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		msg   string // the error record's
		cause string // in its error
	}{
		{"postStart failed", []string{"--log-format", "json", "--post-start", "exit 4", "--", "sleep", "5"}, 125,
			"postStart hook failed", "exit code 4"},
		{"command not found", []string{"--log-format", "json", "--", "/no/such/command"}, 127,
			"cannot start the child", "/no/such/command"},
		{"dependency not up", []string{"--log-format", "json", "--wait", down, "--wait-timeout", "300ms", "--", "true"}, 124,
			"gave up waiting for dependencies", down},
		{"busy --listen", []string{"--log-format", "json", "--listen", busy.Addr().String(), "--", "true"}, 2,
			"cannot listen", busy.Addr().String()},
		{"wait gives up", []string{"wait", "--log-format", "json", "--timeout", "300ms", down}, 124,
			"gave up waiting for dependencies", down},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 20*time.Second)
			res := runQuick(t, ctx, tc.args...)
			assert.Equal(t, tc.code, res.code, "stderr:\n%s", res.stderr)
			var errs []map[string]any
			for _, l := range jsonLines(t, "stderr", res.stderr) {
				assert.Empty(t, checkSchema(l), "line %v", l)
				if l["level"] == "error" {
					errs = append(errs, l)
				}
			}
			if assert.Len(t, errs, 1, "one error record, the cause:\n%s", res.stderr) {
				assert.Equal(t, tc.msg, errs[0]["msg"])
				assert.Contains(t, errs[0]["error"], tc.cause)
			}
		})
	}
}
