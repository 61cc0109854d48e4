package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openFDs counts the open descriptors of pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	return len(fds)
}

// rawStatus sends req on a new connection to addr and returns the status
// line of the answer.
func rawStatus(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write([]byte(req))
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(line)
}

// TestListenLimits: the --listen server holds a bounded number of
// connections whatever clients do, keeps answering /readyz on a fresh
// connection (as the kubelet probes) while 2,000 idle clients are
// connected, enforces the documented 16 KiB limit on a request's line and
// headers, and answers 405 to methods an endpoint does not take.
func TestListenLimits(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	dir := t.TempDir()
	addr := listenAddr(t)
	p := start(t, options{dir: dir}, "--listen", addr, "--", "sh", "-c", childUntilTerm)
	require.NotNil(t, p)
	_, err := waitStatus(ctx, "http://"+addr+"/readyz", http.StatusOK)
	require.NoError(t, err)
	pid, err := p.lifecycledPid(ctx)
	require.NoError(t, err)
	before := openFDs(t, pid)

	t.Run("idle connections", func(t *testing.T) {
		// Half keep-alive clients that made one request, half silent. Each
		// client notices when lifecycled closes its connection.
		const clients = 2000
		var conns []net.Conn
		var closed atomic.Int32
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for i := 0; i < clients; i++ {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			require.NoError(t, err)
			conns = append(conns, c)
			if i%2 == 0 {
				_, err = c.Write([]byte("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"))
				require.NoError(t, err)
			}
			go func() {
				_, _ = io.Copy(io.Discard, c)
				closed.Add(1)
			}()
		}
		// lifecycled works through the flood and keeps at most 128 open.
		// (Before the cap it kept the 1,000 keep-alive ones for its 60 s
		// idle timeout.)
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		require.NoError(t, poll(pctx, func() bool { return closed.Load() >= clients-128 }),
			"lifecycled keeps %d of %d idle connections open", clients-int(closed.Load()), clients)
		fds := openFDs(t, pid)
		assert.LessOrEqual(t, fds, before+128+8, "descriptors with %d clients connected (%d before)", clients, before)
		// With the cap full of idle clients, a probe on a fresh connection
		// is answered within the kubelet's default 1 s timeout.
		var took time.Duration
		for range 5 {
			sent := time.Now()
			assert.Equal(t, http.StatusOK, getStatus(ctx, "http://"+addr+"/readyz"))
			took = max(took, time.Since(sent))
		}
		assert.Less(t, took, 5*time.Second, "/readyz answers with the idle clients connected")
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		rss := ""
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				rss = strings.Join(strings.Fields(l)[1:], " ")
			}
		}
		t.Logf("FIGURE 2,000 idle clients: lifecycled holds %d descriptors (%d before), RSS %s; /readyz in at most %s",
			fds, before, rss, took.Round(time.Millisecond))
	})

	t.Run("header limit", func(t *testing.T) {
		// The request line and headers, \r\n included, total exactly n.
		request := func(n int) string {
			head := "GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: "
			return head + strings.Repeat("a", n-len(head)-len("\r\n\r\n")) + "\r\n\r\n"
		}
		assert.Equal(t, "HTTP/1.1 200 OK", rawStatus(t, addr, request(16<<10)), "16 KiB pass")
		for _, n := range []int{16<<10 + 1, 20 << 10} {
			assert.Equal(t, "HTTP/1.1 431 Request Header Fields Too Large", rawStatus(t, addr, request(n)), "%d bytes", n)
		}
	})

	t.Run("methods", func(t *testing.T) {
		for _, path := range []string{"/metrics", "/readyz", "/livez", "/startupz"} {
			for _, method := range []string{http.MethodDelete, http.MethodPost, http.MethodPut} {
				req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
				require.NoError(t, err)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				_ = resp.Body.Close()
				assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", method, path)
				assert.Contains(t, resp.Header.Get("Allow"), "GET", "%s %s", method, path)
			}
		}
	})

	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	assert.Equal(t, 3, p.wait(ctx).code)
}
