package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteTerminationLog(t *testing.T) {
	tests := []struct {
		name       string
		previous   string
		message    string
		wantExact  bool
		wantPrefix string
	}{
		{name: "short", message: "child exited with code 3 (phase running)", wantExact: true},
		{name: "exactly 4096", message: strings.Repeat("a", 4096), wantExact: true},
		{name: "replaces a longer old message", previous: strings.Repeat("old ", 500), message: "child killed by SIGKILL after the 10s grace period (phase draining)", wantExact: true},
		{name: "long ascii", message: "postStart hook failed: " + strings.Repeat("b", 5000), wantPrefix: "postStart hook failed: bbbb"},
		{name: "multibyte at the boundary", message: "é" + strings.Repeat("日本語", 2000), wantPrefix: "é日本語"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "termination-log")
			if tt.previous != "" {
				require.NoError(t, os.WriteFile(path, []byte(tt.previous), 0o644))
			}
			require.NoError(t, writeTerminationLog(path, tt.message))
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			got := string(data)

			assert.LessOrEqual(t, len(got), 4096)
			assert.True(t, utf8.ValidString(got), "cut inside a character")
			if tt.wantExact {
				assert.Equal(t, tt.message, got)
				return
			}
			assert.True(t, strings.HasPrefix(got, tt.wantPrefix))
			assert.True(t, strings.HasSuffix(got, "[truncated]"))
			assert.Greater(t, len(got), 4000, "cut far more than needed")
		})
	}
}

func TestWriteTerminationLogError(t *testing.T) {
	err := writeTerminationLog(filepath.Join(t.TempDir(), "missing", "log"), "x")
	assert.ErrorContains(t, err, "write termination log")
}
