package probes

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckUnix(t *testing.T) {
	dir := t.TempDir()
	up := filepath.Join(dir, "up.sock")
	l, err := net.Listen("unix", up)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()

	// A socket file left behind by a server that is gone: it exists, but
	// nothing listens, which is exactly what a file check would miss.
	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.Listen("unix", stale)
	require.NoError(t, err)
	sl.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, sl.Close())
	_, err = os.Stat(stale)
	require.NoError(t, err, "the stale socket file must exist for this test")

	tests := []struct {
		name   string
		path   string
		wantUp bool
	}{
		{"listening", up, true},
		{"stale socket", stale, false},
		{"missing", filepath.Join(dir, "missing.sock"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkTarget(t, "unix://"+tt.path)
			if tt.wantUp {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}
