package settings

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/supervisor"
)

// env is an environment as os.Environ gives it.
func env(m map[string]string) []string {
	var kvs []string
	for k, v := range m {
		kvs = append(kvs, k+"="+v)
	}
	return kvs
}

func TestParseRunOptionsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("gracePeriod: 7s\ndrain: {delay: 3}\nstopSignal: QUIT\nwaitFor: [tcp://127.0.0.1:1]\n"), 0o644))

	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantGrace time.Duration
		wantDelay time.Duration
		wantStop  string
		wantWait  []string
	}{
		{"defaults", []string{"--", "app"}, nil, 10 * time.Second, 0, "TERM", nil},
		{"file", []string{"--config", file, "--", "app"}, nil, 7 * time.Second, 3 * time.Second, "QUIT", []string{"tcp://127.0.0.1:1"}},
		{"env beats file", []string{"--config", file, "--", "app"},
			map[string]string{"LIFECYCLED_GRACE_PERIOD": "5s", "LIFECYCLED_WAIT": "tcp://a:1,tcp://b:2"},
			5 * time.Second, 3 * time.Second, "QUIT", []string{"tcp://a:1", "tcp://b:2"}},
		{"flag beats env", []string{"--config", file, "--grace-period", "1s", "--stop-signal", "HUP", "--", "app"},
			map[string]string{"LIFECYCLED_GRACE_PERIOD": "5s"}, time.Second, 3 * time.Second, "HUP", []string{"tcp://127.0.0.1:1"}},
		{"config from env", []string{"--", "app"}, map[string]string{"LIFECYCLED_CONFIG": file}, 7 * time.Second, 3 * time.Second, "QUIT", []string{"tcp://127.0.0.1:1"}},
		{"bare seconds", []string{"--grace-period", "2.5", "--", "app"}, nil, 2500 * time.Millisecond, 0, "TERM", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cfg, code, ok := loadRunConfig(tt.args, env(tt.env), &stdout, &stderr)
			require.True(t, ok, "exit %d: %s", code, stderr.String())
			assert.Equal(t, tt.wantGrace, cfg.Config.Stop.GracePeriod)
			assert.Equal(t, tt.wantDelay, cfg.Config.Stop.DrainDelay)
			assert.Equal(t, tt.wantStop, strings.TrimPrefix(signalName(cfg), "SIG"))
			var waits []string
			for _, w := range cfg.Config.Waits {
				waits = append(waits, w.String())
			}
			assert.Equal(t, tt.wantWait, waits)
			assert.Equal(t, []string{"app"}, cfg.Config.Command)
		})
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	unknown := file("unknown.yaml", "name: x\ndrain:\n  dealy: 5s\n")
	badDur := file("baddur.yaml", "gracePeriod: soon\n")
	badYAML := file("bad.yaml", "name: [unclosed\n")
	namedPort := file("port.yaml", "readinessProbe:\n  httpGet: {port: http, path: /}\n")

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // a part of the one-line error
	}{
		{"no command", []string{"--grace-period", "1s"}, nil, "no COMMAND"},
		{"unknown flag", []string{"--bogus", "--", "x"}, nil, "-bogus"},
		{"bad duration", []string{"--grace-period", "soon", "--", "x"}, nil, "grace-period"},
		{"bad env duration", []string{"--", "x"}, map[string]string{"LIFECYCLED_DRAIN_DELAY": "x"}, "LIFECYCLED_DRAIN_DELAY"},
		{"bad signal", []string{"--stop-signal", "SIGNOPE", "--", "x"}, nil, "--stop-signal"},
		{"bad signal map", []string{"--signal-map", "TERM", "--", "x"}, nil, "--signal-map"},
		{"bad exit code map", []string{"--exit-code-map", "143:300", "--", "x"}, nil, "--exit-code-map"},
		{"bad wait target", []string{"--wait", "ftp://x", "--", "x"}, nil, "ftp://x"},
		{"exec wait target", []string{"--wait", "exec:true", "--", "x"}, nil, "--wait"},
		{"bad ready target", []string{"--ready", "tcp://nohost", "--", "x"}, nil, "--ready"},
		{"bad live target", []string{"--live", "tcp://nohost", "--", "x"}, nil, "--live"},
		{"live success threshold", []string{"--live", "tcp://127.0.0.1:1", "--live-success-threshold", "2", "--", "x"}, nil, "must be 1"},
		{"live failure threshold", []string{"--live", "tcp://127.0.0.1:1", "--live-failure-threshold", "0", "--", "x"}, nil, "--live-failure-threshold"},
		{"two hooks", []string{"--pre-stop", "x", "--pre-stop-http", "http://a/", "--", "x"}, nil, "--pre-stop"},
		{"bad hook json", []string{"--post-start", "[]", "--", "x"}, nil, "--post-start"},
		{"admin not loopback", []string{"--admin-listen", "0.0.0.0:1", "--", "x"}, nil, "loopback"},
		{"exit-with without dir", []string{"--exit-with", "main", "--", "x"}, nil, "--tombstone-dir"},
		{"bad name", []string{"--name", "a/b", "--", "x"}, nil, "--name"},
		{"config missing", []string{"--config", filepath.Join(dir, "nope.yaml"), "--", "x"}, nil, "nope.yaml"},
		{"config unknown field", []string{"--config", unknown, "--", "x"}, nil, "line 3: field drain.dealy is not a known field"},
		{"config bad duration", []string{"--config", badDur, "--", "x"}, nil, "line 1"},
		{"config bad yaml", []string{"--config", badYAML, "--", "x"}, nil, "bad.yaml"},
		{"config named port", []string{"--config", namedPort, "--", "x"}, nil, "named ports"},
		// The file's errors name the field, never a Go type (issue 9).
		{"config list at top", []string{"--config", file("seq.yaml", "- name: x\n"), "--", "x"}, nil, "line 1: want a mapping of settings"},
		{"config list for duration", []string{"--config", file("durlist.yaml", "gracePeriod: [1, 2]\n"), "--", "x"}, nil, "line 1: gracePeriod: want a single value, not a list"},
		{"config value for list", []string{"--config", file("listval.yaml", "waitFor: tcp://a:1\n"), "--", "x"}, nil, "line 1: waitFor: want a list, not a value"},
		{"config mapping for name", []string{"--config", file("map.yaml", "name: {a: b}\n"), "--", "x"}, nil, "line 1: name: want a single value, not a mapping"},
		{"config bad count", []string{"--config", file("count.yaml", "drain:\n  connections: many\n"), "--", "x"}, nil, `line 2: drain.connections: "many": want a whole number`},
		{"config probe seconds", []string{"--config", file("secs.yaml", "readinessProbe:\n  tcpSocket: {port: 1}\n  periodSeconds: 1.5\n"), "--", "x"}, nil, "line 3: readinessProbe.periodSeconds"},
		{"config handler field", []string{"--config", file("hf.yaml", "lifecycle:\n  preStop:\n    exec: {cmd: [x]}\n"), "--", "x"}, nil, "line 3: field lifecycle.preStop.exec.cmd is not a known field"},
		{"config two handlers", []string{"--config", file("two.yaml", "lifecycle:\n  preStop:\n    exec: {command: [x]}\n    sleep: {seconds: 1}\n"), "--", "x"}, nil, "line 3: lifecycle.preStop: give exactly one of exec, httpGet, sleep"},
		// Issue 17: two drain: mappings were merged, of two name: the
		// last won, silently.
		{"config duplicate key", []string{"--config", file("dup.yaml", "drain:\n  delay: 5s\ndrain:\n  timeout: 10s\n"), "--", "x"}, nil, `dup.yaml: line 3: key "drain" given twice in one mapping (first at line 1)`},
		{"config duplicate nested key", []string{"--config", file("dup2.yaml", "drain:\n  delay: 5s\n  delay: 6s\n"), "--", "x"}, nil, `line 3: key "delay" given twice in one mapping (first at line 2)`},
		{"config too large", []string{"--config", file("big.yaml", "name: x\n"+strings.Repeat("#", 1<<20)), "--", "x"}, nil, "big.yaml: larger than 1 MiB"},
		{"termination log max too large", []string{"--termination-log-max", "8192", "--", "x"}, nil, "--termination-log-max 8192: want 64 to 4096"},
		{"termination log max too small", []string{"--termination-log-max", "10", "--", "x"}, nil, "--termination-log-max 10: want 64 to 4096"},
		{"unknown flag suggests", []string{"--drain-dealy", "5s", "--", "x"}, nil, "unknown flag --drain-dealy (did you mean --drain-delay?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			_, code, ok := loadRunConfig(tt.args, env(tt.env), &stdout, &stderr)
			require.False(t, ok)
			assert.Equal(t, exitUsage, code)
			msg := stderr.String()
			assert.Equal(t, 1, strings.Count(msg, "\n"), "one line: %q", msg)
			assert.Contains(t, msg, tt.want)
			assert.True(t, strings.HasPrefix(msg, "lifecycled: "), msg)
			assert.NotRegexp(t, `!!|main\.|\*?\bint(32|64)?\b|time\.Duration|bad duration ""`, msg, "no Go types or empty values")
			assert.Empty(t, stdout.String())
		})
	}
}

func TestConfigFileKubernetesFields(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
name: web
readinessProbe:
  httpGet: {path: /healthz, port: 8080, scheme: HTTP}
  initialDelaySeconds: 2
  periodSeconds: 5
  timeoutSeconds: 2
  successThreshold: 2
  failureThreshold: 4
livenessProbe:
  tcpSocket: {port: 8081}
  periodSeconds: 7
  failureThreshold: 5
lifecycle:
  postStart:
    httpGet: {path: /warm, port: "8080"}
  preStop:
    exec: {command: ["/bin/sh", "-c", "echo bye"]}
terminationGracePeriodSeconds: 45
drain: {delay: 5s, connections: 8080, timeout: 20s}
exitWith: [main]
tombstoneDir: /tmp/t
`), 0o644))
	var stdout, stderr bytes.Buffer
	cfg, _, ok := loadRunConfig([]string{"--config", file, "--", "app"}, env(nil), &stdout, &stderr)
	require.True(t, ok, stderr.String())
	require.NotNil(t, cfg.Config.Ready)
	assert.Equal(t, "http://127.0.0.1:8080/healthz", cfg.Config.Ready.Target.String())
	assert.Equal(t, 2*time.Second, cfg.Config.Ready.InitialDelay)
	assert.Equal(t, 5*time.Second, cfg.Config.Ready.Period)
	assert.Equal(t, 2*time.Second, cfg.Config.Ready.Timeout)
	assert.Equal(t, 2, cfg.Config.Ready.SuccessThreshold)
	assert.Equal(t, 4, cfg.Config.Ready.FailureThreshold)
	require.NotNil(t, cfg.Config.Live)
	assert.Equal(t, "tcp://127.0.0.1:8081", cfg.Config.Live.Target.String())
	assert.Equal(t, 7*time.Second, cfg.Config.Live.Period)
	assert.Equal(t, time.Second, cfg.Config.Live.Timeout, "the default")
	assert.Equal(t, 1, cfg.Config.Live.SuccessThreshold)
	assert.Equal(t, 5, cfg.Config.Live.FailureThreshold)
	assert.True(t, cfg.Config.Live.Liveness)
	require.NotNil(t, cfg.Config.PostStart)
	assert.Equal(t, "http://127.0.0.1:8080/warm", cfg.Config.PostStart.HTTPURL)
	require.NotNil(t, cfg.Config.Stop.PreStop)
	assert.Equal(t, []string{"/bin/sh", "-c", "echo bye"}, cfg.Config.Stop.PreStop.Exec)
	assert.False(t, cfg.Config.Stop.PreStop.Shell, "Kubernetes exec handlers are exec form")
	assert.Equal(t, 45*time.Second, cfg.TerminationGrace)
	assert.Equal(t, 8080, cfg.Config.Stop.DrainPort)
	assert.Equal(t, 20*time.Second, cfg.Config.Stop.DrainTimeout)
	assert.Equal(t, "web", cfg.Config.Name)
	assert.Equal(t, []string{"main"}, cfg.Config.ExitWith)
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5s", 5 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"5", 5 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"0", 0, true},
		{"-1s", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
		{"1e12", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if !tt.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func signalName(c *Run) string { return supervisor.SignalName(c.Config.Stop.StopSignal) }

func TestCheckName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"web", true}, {"web-1.v2", true}, {"ünïcode", true},
		{"", false}, {".", false}, {"..", false}, {"a/b", false}, {"a\nb", false}, {"a\tb", false},
		{"a\x00b", false}, {"a\x7fb", false}, {strings.Repeat("x", maxName), true}, {strings.Repeat("x", maxName+1), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkName("--name", tt.name)
			assert.Equal(t, tt.ok, err == nil, "%v", err)
			if err != nil {
				assert.NotContains(t, err.Error(), "\n")
			}
		})
	}
}

func TestCommandName(t *testing.T) {
	for _, tt := range []struct{ name, command, want, err string }{
		{"", "/usr/bin/app", "app", ""},
		{"web", "/usr/bin/app", "web", ""},
		{"", "/", "lifecycled", ""},
		{"", "/srv/..", "lifecycled", ""},
		{"", "/bin/a\nb", "", `COMMAND "/bin/a\nb"`},
		{"a/b", "app", "", "--name"},
	} {
		got, err := commandName(tt.name, tt.command)
		if tt.err != "" {
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
}
