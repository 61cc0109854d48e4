package settings

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSettingsNotSilentlyAccepted: settings that used to be accepted
// without a word (issue 17, point 10) are a usage error: exit 2 and one
// line naming the setting and, for a typo, the fix.
func TestSettingsNotSilentlyAccepted(t *testing.T) {
	file := func(yaml string) string {
		p := filepath.Join(t.TempDir(), "c.yaml")
		require.NoError(t, os.WriteFile(p, []byte(yaml), 0o644))
		return p
	}
	tests := []struct {
		name    string
		args    []string // before "-- app"
		env     []string
		wantErr string // "" for accepted
	}{
		// (a) An unknown LIFECYCLED_ variable, as an unknown flag.
		{name: "env typo", env: []string{"LIFECYCLED_DRAIN_DEALY=5s"},
			wantErr: "unknown environment variable LIFECYCLED_DRAIN_DEALY (did you mean LIFECYCLED_DRAIN_DELAY?)"},
		{name: "env unknown, nothing close", env: []string{"LIFECYCLED_COLOUR=blue"},
			wantErr: "unknown environment variable LIFECYCLED_COLOUR (see"},
		{name: "env empty value", env: []string{"LIFECYCLED_GRACE_PERIDO="},
			wantErr: "unknown environment variable LIFECYCLED_GRACE_PERIDO (did you mean LIFECYCLED_GRACE_PERIOD?)"},
		{name: "env several, first named", env: []string{"LIFECYCLED_ZZZ=1", "LIFECYCLED_WAIT_TIMOUT=1s"},
			wantErr: "unknown environment variable LIFECYCLED_WAIT_TIMOUT (did you mean LIFECYCLED_WAIT_TIMEOUT?) and 1 more"},
		{name: "env typo named before the error it causes", args: []string{"--drain-quiet", "1s", "--drain-connections", "80"},
			env: []string{"LIFECYCLED_DRAIN_DEALY=5s"}, wantErr: "LIFECYCLED_DRAIN_DEALY"},
		{name: "env known", env: []string{"LIFECYCLED_DRAIN_DELAY=5s", "LIFECYCLED_READY_FAILURE_THRESHOLD=2", "LIFECYCLED_CONFIG="}},
		{name: "env not settings", env: []string{"LIFECYCLED_IMAGE=localhost/lifecycled:dev", "LIFECYCLED_SOAK=10m", "LIFECYCLED_SOAK_OUT=/tmp"}},
		{name: "env other prefixes", env: []string{"LIFECYCLED=1", "lifecycled_drain_dealy=5s", "XLIFECYCLED_FOO=1"}},

		// (b) The adaptive drain's quiet window within its ceiling.
		{name: "quiet over delay", args: []string{"--drain-quiet", "2s", "--drain-delay", "1s", "--drain-connections", "80"},
			wantErr: "--drain-quiet 2s is longer than --drain-delay 1s"},
		{name: "quiet over delay in the file", args: []string{"--config", file("drain: {quiet: 2s, delay: 1s, connections: 80}\n")},
			wantErr: "--drain-quiet 2s is longer than --drain-delay 1s"},
		{name: "quiet equal to delay", args: []string{"--drain-quiet", "1s", "--drain-delay", "1s", "--drain-connections", "80"}},

		// (c) Numbers in decimal.
		{name: "hex port", args: []string{"--drain-connections", "0x10"}, wantErr: `--drain-connections "0x10": want a whole number in decimal digits`},
		{name: "octal port", args: []string{"--drain-connections", "0o20"}, wantErr: `--drain-connections "0o20"`},
		{name: "underscores", args: []string{"--drain-connections", "8_080"}, wantErr: `--drain-connections "8_080"`},
		{name: "plus sign", args: []string{"--drain-connections", "+16"}, wantErr: `--drain-connections "+16"`},
		{name: "hex port from env", env: []string{"LIFECYCLED_DRAIN_CONNECTIONS=0x10"}, wantErr: `LIFECYCLED_DRAIN_CONNECTIONS="0x10"`},
		{name: "hex port in the file", args: []string{"--config", file("drain: {connections: 0x10}\n")}, wantErr: `"0x10": want a whole number in decimal digits`},
		{name: "hex threshold", args: []string{"--ready", "tcp://127.0.0.1:1", "--ready-failure-threshold", "0x3"}, wantErr: `--ready-failure-threshold "0x3"`},
		{name: "decimal port", args: []string{"--drain-connections", "16"}},
		{name: "negative port", args: []string{"--drain-connections", "-1"}, wantErr: "--drain-connections -1: not a port number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			_, code, ok := loadRunConfig(append(tt.args, "--", "app"), tt.env, &stdout, &stderr)
			if tt.wantErr == "" {
				assert.True(t, ok, "exit %d: %s", code, stderr.String())
				return
			}
			require.False(t, ok, "accepted")
			assert.Equal(t, exitUsage, code)
			assert.Contains(t, stderr.String(), tt.wantErr)
			assert.Equal(t, 1, bytes.Count(stderr.Bytes(), []byte("\n")), "one line: %q", stderr.String())
		})
	}
}

// TestSettingsDecimalPort: the port a valid --drain-connections names.
func TestSettingsDecimalPort(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cfg, _, ok := loadRunConfig([]string{"--drain-connections", "010", "--", "app"}, nil, &stdout, &stderr)
	require.True(t, ok, stderr.String())
	assert.Equal(t, 10, cfg.Config.Stop.DrainPort, "010 is ten, not octal eight")
}
