package freeport

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLoopback: every port is below the ephemeral range, bindable, and never
// handed out twice, even while the ones before it are held.
func TestLoopback(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 300 {
		p, err := Loopback()
		require.NoError(t, err)
		require.GreaterOrEqual(t, p, lowest)
		require.Less(t, p, low, "port %d is in the ephemeral range, which starts at %d", p, low)
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		require.NoError(t, err, "port %d was handed out but cannot be bound", p)
		t.Cleanup(func() { _ = ln.Close() })
	}
}
