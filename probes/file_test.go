package probes

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ready")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	good := filepath.Join(dir, "good-link")
	require.NoError(t, os.Symlink(file, good))
	dangling := filepath.Join(dir, "dangling-link")
	require.NoError(t, os.Symlink(filepath.Join(dir, "nowhere"), dangling))

	tests := []struct {
		name   string
		path   string
		wantUp bool
	}{
		{"file", file, true},
		{"directory", dir, true},
		{"link to a file", good, true},
		{"missing", filepath.Join(dir, "missing"), false},
		{"dangling link", dangling, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkTarget(t, "file://"+tt.path)
			if tt.wantUp {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.ErrorIs(t, err, os.ErrNotExist)
			}
		})
	}
}
