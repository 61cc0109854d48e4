package probes

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	accepted := make(chan struct{}, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_ = c.Close()
		accepted <- struct{}{}
	}()

	err = checkTarget(t, "tcp://"+l.Addr().String())
	assert.NoError(t, err)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		assert.Fail(t, "the check never connected")
	}

	err = checkTarget(t, "tcp://"+closedPort(t))
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "want connection refused, got %v", err)
}

func TestCheckTCPHonoursDeadline(t *testing.T) {
	// An already expired context: the check must not even try.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	err = Check(ctx, mustParse(t, "tcp://"+l.Addr().String()), testOptions)
	assert.ErrorIs(t, err, context.Canceled)
}
