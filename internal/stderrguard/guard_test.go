package stderrguard

import (
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOwnSIGPIPE: a write to a pipe whose reader is gone makes the next
// SIGPIPE lifecycled's own; before any such write, a SIGPIPE is someone
// else's (and is forwarded).
func TestOwnSIGPIPE(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer w.Close()
	g := New(w)
	assert.False(t, g.OwnSIGPIPE(), "no write failed yet")
	_, err = g.Write([]byte("fine\n"))
	require.NoError(t, err)
	assert.False(t, g.OwnSIGPIPE(), "a write that worked")
	require.NoError(t, r.Close())
	_, err = g.Write([]byte("lost\n"))
	require.ErrorIs(t, err, syscall.EPIPE)
	assert.True(t, g.OwnSIGPIPE(), "the write just failed with EPIPE")
	var none *Guard
	assert.False(t, none.OwnSIGPIPE())
}
