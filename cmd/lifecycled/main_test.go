package main

import (
	"bytes"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExplainShowsAdaptiveDrain(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := explainMain([]string{"--drain-quiet", "1s", "--drain-min", "500ms", "--drain-delay", "10s",
		"--ready", "http://127.0.0.1:8080/healthz", "--termination-grace-period", "30s", "--", "app"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	out := stdout.String()
	assert.Contains(t, out, "adaptive drain: until neither a new connection nor a request byte on an open one reaches port 8080 for 1s, at least 500ms, at most 10s")
	assert.Contains(t, out, "it cannot see a client silent for longer than 1s, UDP, or a Unix socket")
	assert.Contains(t, out, "drain <=10s")
	assert.Contains(t, out, "Budget: fits")
}

// TestExplainDrainReport: explain says what the stop's report will tell,
// for which ports, and where it goes (--termination-log, --events).
func TestExplainDrainReport(t *testing.T) {
	for _, tt := range []struct {
		name      string
		args      []string
		want, not []string
	}{
		{name: "a fixed drain with the app's port", args: []string{"--drain-delay", "5s", "--ready", "tcp://127.0.0.1:8080", "--termination-grace-period", "30s"},
			want: []string{`At the end, one "drain report" line: the last new connection and request byte to port 8080 after SIGTERM,`,
				"the connections open at the stop signal and at SIGKILL, whether SIGKILL was needed and how long the stop took (and its share of 30s)."},
			not: []string{"--events:", "termination message"}},
		{name: "no port known", args: []string{"--drain-delay", "5s"},
			want: []string{`one "drain report" line: whether SIGKILL was needed and how long the stop took; no port of the app is known`}},
		{name: "events and termination log", args: []string{"--events", "--termination-log", "/dev/termination-log"},
			want: []string{"--events: also posted as a Kubernetes Event on the pod", "Its summary ends the termination message"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 0, explainMain(append(tt.args, "--", "app"), &stdout, &stderr), stderr.String())
			for _, w := range tt.want {
				assert.Contains(t, stdout.String(), w)
			}
			for _, n := range tt.not {
				assert.NotContains(t, stdout.String(), n)
			}
		})
	}
}

// TestExplainKeepWithoutReady: --drain-readiness keep without --ready
// keeps /readyz at 200 whatever the app does until the stop signal: explain
// warns; with --ready it does not.
func TestExplainKeepWithoutReady(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		warn bool
	}{
		{"keep without --ready", []string{"--drain-readiness", "keep", "--drain-delay", "5s"}, true},
		{"keep with --ready", []string{"--drain-readiness", "keep", "--drain-delay", "5s", "--ready", "tcp://127.0.0.1:8080"}, false},
		{"fail without --ready", []string{"--drain-delay", "5s"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 0, explainMain(append(tt.args, "--", "app"), &stdout, &stderr), stderr.String())
			if tt.warn {
				assert.Contains(t, stdout.String(), "WARNING: without --ready nothing tells lifecycled the app stopped serving before then, so give --ready")
			} else {
				assert.NotContains(t, stdout.String(), "WARNING: without --ready")
			}
		})
	}
}

func TestExplainBudget(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"fits", []string{"--drain-delay", "5s", "--termination-grace-period", "30s", "--", "app"}, 0, "Budget: fits"},
		{"too long", []string{"--drain-delay", "25s", "--termination-grace-period", "30s"}, 1, "DOES NOT FIT"},
		{"stop signal squeezed", []string{"--drain-delay", "29s", "--grace-period", "0s", "--termination-grace-period", "30s"}, 1, "DOES NOT FIT"},
		{"unchecked", []string{"--drain-delay", "25s"}, 0, "not checked"},
		{"bad flag", []string{"--drain-delay", "x"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := explainMain(tt.args, &stdout, &stderr)
			assert.Equal(t, tt.code, code, stderr.String())
			assert.Contains(t, stdout.String(), tt.want)
			if code != 2 {
				assert.Contains(t, stdout.String(), "SIGKILL at")
			}
		})
	}
}

func TestVersionFrom(t *testing.T) {
	bi := func(ver string, settings ...string) *debug.BuildInfo {
		b := &debug.BuildInfo{Main: debug.Module{Version: ver}}
		for i := 0; i+1 < len(settings); i += 2 {
			b.Settings = append(b.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return b
	}
	for _, tt := range []struct {
		name             string
		ver, rev         string
		bi               *debug.BuildInfo
		wantVer, wantRev string
	}{
		{"go install @version", "dev", "", bi("v1.2.3"), "v1.2.3", ""},
		{"plain build in a checkout", "dev", "", bi("v0.0.0-20261130-abc", "vcs.revision", "abc", "vcs.modified", "true"), "v0.0.0-20261130-abc", "abc-dirty"},
		{"no VCS", "dev", "", bi("(devel)"), "dev", ""},
		{"ldflags win", "v9", "cafe", bi("v1.2.3", "vcs.revision", "abc"), "v9", "cafe"},
		{"no build info", "dev", "", nil, "dev", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, r := versionFrom(tt.ver, tt.rev, tt.bi)
			assert.Equal(t, tt.wantVer, v)
			assert.Equal(t, tt.wantRev, r)
		})
	}
}

// TestSubcommandsUnknownEnv: wait and probe refuse an unknown LIFECYCLED_
// variable too, and take the run flags' variables.
func TestSubcommandsUnknownEnv(t *testing.T) {
	for _, cmd := range []func(args, environ []string, stdout, stderr *bytes.Buffer) int{
		func(args, environ []string, stdout, stderr *bytes.Buffer) int {
			return waitMain(args, environ, stdout, stderr)
		},
		func(args, environ []string, stdout, stderr *bytes.Buffer) int {
			return probeMain(args, environ, stdout, stderr)
		},
	} {
		var stdout, stderr bytes.Buffer
		code := cmd([]string{"tcp://127.0.0.1:1"}, []string{"LIFECYCLED_READY_TIMOUT=1s"}, &stdout, &stderr)
		assert.Equal(t, exitUsage, code)
		assert.Contains(t, stderr.String(), "unknown environment variable LIFECYCLED_READY_TIMOUT (did you mean LIFECYCLED_READY_TIMEOUT?)")
		assert.Equal(t, 1, bytes.Count(stderr.Bytes(), []byte("\n")), "one line: %q", stderr.String())

		stdout.Reset()
		assert.Equal(t, exitOK, cmd([]string{"--help"}, []string{"LIFECYCLED_READY_TIMOUT=1s"}, &stdout, &stderr), "--help still helps")
	}
}
