package settings

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdaptiveDrainSettings: --drain-quiet, --drain-min and their YAML keys
// reach the stop sequence with the ports to watch, and every inconsistent
// combination is a one-line usage error.
func TestAdaptiveDrainSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("drain: {delay: 10s, quiet: 1s, min: 2s}\nreadinessProbe:\n  tcpSocket: {port: 8443}\n"), 0o644))
	watchFile := filepath.Join(t.TempDir(), "w.yaml")
	require.NoError(t, os.WriteFile(watchFile, []byte("drain: {delay: 10s, quiet: 1s, watch: [8080, \"9000\"]}\n"), 0o644))
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantQuiet time.Duration
		wantMin   time.Duration
		wantPorts []int
		wantErr   string
	}{
		// Off, the app's ports are still known: the drain report watches them.
		{name: "off by default", args: []string{"--ready", "http://127.0.0.1:8080/", "--", "app"}, wantPorts: []int{8080}},
		{name: "off, no port known", args: []string{"--ready", "exec:true", "--", "app"}},
		{name: "port of --ready", args: []string{"--drain-quiet", "1s", "--drain-delay", "10s", "--ready", "http://127.0.0.1:8080/healthz", "--", "app"},
			wantQuiet: time.Second, wantPorts: []int{8080}},
		{name: "http without port", args: []string{"--drain-quiet", "1s", "--drain-delay", "10s", "--ready", "http://localhost/healthz", "--", "app"},
			wantQuiet: time.Second, wantPorts: []int{80}},
		{name: "--drain-connections, --ready and --live, each once", args: []string{"--drain-quiet", "500ms", "--drain-min", "1s", "--drain-delay", "10s",
			"--drain-connections", "9000", "--ready", "tcp://127.0.0.1:8080", "--live", "http://127.0.0.1:8080/livez", "--", "app"},
			wantQuiet: 500 * time.Millisecond, wantMin: time.Second, wantPorts: []int{9000, 8080}},
		{name: "port of --live", args: []string{"--drain-quiet", "1s", "--drain-delay", "10s", "--ready", "exec:true", "--live", "tcp://127.0.0.1:7070", "--", "app"},
			wantQuiet: time.Second, wantPorts: []int{7070}},
		{name: "environment", args: []string{"--drain-delay", "5s", "--ready", "grpc://127.0.0.1:9090", "--", "app"},
			env: map[string]string{"LIFECYCLED_DRAIN_QUIET": "1s"}, wantQuiet: time.Second, wantPorts: []int{9090}},
		{name: "config file", args: []string{"--config", file, "--", "app"}, wantQuiet: time.Second, wantMin: 2 * time.Second, wantPorts: []int{8443}},
		{name: "no ceiling", args: []string{"--drain-quiet", "1s", "--ready", "tcp://127.0.0.1:8080", "--", "app"}, wantErr: "needs --drain-delay"},
		{name: "no port", args: []string{"--drain-quiet", "1s", "--drain-delay", "5s", "--ready", "exec:true", "--", "app"}, wantErr: "needs the app's port"},
		{name: "--drain-watch adds ports, repeatable and from the environment", args: []string{"--drain-quiet", "1s", "--drain-delay", "10s",
			"--ready", "tcp://127.0.0.1:8080", "--drain-watch", "8443", "--drain-watch", "8080", "--", "app"},
			env: map[string]string{}, wantQuiet: time.Second, wantPorts: []int{8443, 8080}},
		{name: "--drain-watch alone names the port", args: []string{"--drain-quiet", "1s", "--drain-delay", "10s", "--ready", "exec:true", "--", "app"},
			env: map[string]string{"LIFECYCLED_DRAIN_WATCH": "7000,7001"}, wantQuiet: time.Second, wantPorts: []int{7000, 7001}},
		{name: "--drain-watch in the config file", args: []string{"--config", watchFile, "--", "app"}, wantQuiet: time.Second, wantPorts: []int{8080, 9000}},
		{name: "--drain-watch in hex", args: []string{"--drain-quiet", "1s", "--drain-delay", "5s", "--drain-watch", "0x10", "--", "app"},
			wantErr: `--drain-watch "0x10": not a port number`},
		{name: "--drain-watch out of range", args: []string{"--drain-quiet", "1s", "--drain-delay", "5s", "--drain-watch", "70000", "--", "app"},
			wantErr: `--drain-watch "70000": not a port number`},
		{name: "--drain-watch without quiet", args: []string{"--drain-watch", "8080", "--", "app"}, wantErr: "--drain-watch needs --drain-quiet"},
		{name: "min without quiet", args: []string{"--drain-min", "1s", "--", "app"}, wantErr: "--drain-min needs --drain-quiet"},
		{name: "min over ceiling", args: []string{"--drain-quiet", "1s", "--drain-min", "6s", "--drain-delay", "5s", "--drain-connections", "80", "--", "app"},
			wantErr: "--drain-min 6s is longer than --drain-delay 5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cfg, code, ok := loadRunConfig(tt.args, env(tt.env), &stdout, &stderr)
			if tt.wantErr != "" {
				require.False(t, ok)
				assert.Equal(t, exitUsage, code)
				assert.Contains(t, stderr.String(), tt.wantErr)
				assert.Equal(t, 1, bytes.Count(stderr.Bytes(), []byte("\n")), "one line: %q", stderr.String())
				return
			}
			require.True(t, ok, "exit %d: %s", code, stderr.String())
			assert.Equal(t, tt.wantQuiet, cfg.Config.Stop.DrainQuiet)
			assert.Equal(t, tt.wantMin, cfg.Config.Stop.DrainMin)
			assert.Equal(t, tt.wantPorts, cfg.Config.Stop.QuietPorts)
		})
	}
}
