package probes

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/proctest"
)

func TestCheckExec(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	require.NoError(t, os.WriteFile(ready, nil, 0o600))

	tests := []struct {
		name    string
		target  string
		wantUp  bool
		wantErr string // a part of the error, when down
	}{
		{"shell form exits 0", "exec:test -f " + ready, true, ""},
		{"exec form exits 0", `exec:["cat", "` + ready + `"]`, true, ""},
		{"shell form exits 1", "exec:test -f " + filepath.Join(dir, "missing"), false, "exit status 1"},
		{"output in the reason, on one line", "exec:echo not; echo ready >&2; exit 3", false, "exit status 3: not ready"},
		{"output cut short", "exec:yes | head -c 100000; exit 1", false, "exit status 1: y y y"},
		{"command not found", `exec:["/nonexistent/probe"]`, false, "/nonexistent/probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkTarget(t, tt.target)
			if tt.wantUp {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.NotContains(t, err.Error(), "\n")
			assert.Less(t, len(err.Error()), 2*maxExecOutput)
		})
	}
}

// readPID waits for a command under test to write its background child's pid.
func readPID(t *testing.T, file string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(file)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	return pid
}

func TestCheckExecKillsTheGroup(t *testing.T) {
	tests := []struct {
		name    string
		script  string // $PIDFILE receives the background child's pid
		wantUp  bool
		wantErr string
	}{
		// The shell waits for its child: at the deadline both must die.
		{"at the deadline", "sleep 100 & echo $! > $PIDFILE; wait", false, "killed at the deadline"},
		// The shell exits 0 at once: the check is up, and returns at once
		// although the child holds the output pipe, and the child dies.
		{"after success", "sleep 100 & echo $! > $PIDFILE; exit 0", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			script := strings.ReplaceAll(tt.script, "$PIDFILE", pidFile)
			const deadline = 500 * time.Millisecond
			start := time.Now()
			err := Check(timeoutCtx(t, deadline), mustParse(t, "exec:"+script), testOptions)
			elapsed := time.Since(start)
			if tt.wantUp {
				assert.NoError(t, err)
				assert.Less(t, elapsed, deadline, "the check waited for the background child")
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Less(t, elapsed, 3*time.Second)
			}
			pid := readPID(t, pidFile)
			assert.Eventually(t, func() bool { return proctest.Gone(pid) }, 5*time.Second, 10*time.Millisecond,
				"background child %d survived the check", pid)
		})
	}
}
