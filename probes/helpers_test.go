package probes

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/supervisor"
)

// testOptions are the Options every test check uses; TestMain adds the
// reaper that exec checks start their commands through.
var testOptions = Options{UserAgent: "lifecycled/test"}

func TestMain(m *testing.M) {
	reaper := supervisor.NewReaper(zap.NewNop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = reaper.Run(ctx) }()
	testOptions.Commands = reaper
	code := m.Run()
	cancel()
	os.Exit(code)
}

// mustParse parses s (exec allowed) or fails the test.
func mustParse(t *testing.T, s string) Target {
	t.Helper()
	target, err := ParseTarget(s, true)
	require.NoError(t, err)
	return target
}

// checkTarget checks target, as written, once within 5 s.
func checkTarget(t *testing.T, target string) error {
	t.Helper()
	return Check(timeoutCtx(t, 5*time.Second), mustParse(t, target), testOptions)
}

// timeoutCtx returns a context that ends after d or with the test.
func timeoutCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// closedPort returns a 127.0.0.1 address where nothing listens: it was
// listened on and closed, so it is free but unused.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// silentListener returns the address of a 127.0.0.1 listener that accepts
// connections and never writes a byte: a server that hangs.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	return l.Addr().String()
}
