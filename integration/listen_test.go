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

// slowClients opens n connections to addr, each sending head at once and
// then one byte a second until the test ends or lifecycled closes it. It
// returns how many lifecycled has closed so far, and the status line of
// the first answer one of them got ("" while none).
func slowClients(t *testing.T, ctx context.Context, addr, head string, n int) (closed func() int, firstStatus func() string) {
	t.Helper()
	var nclosed atomic.Int32
	var status atomic.Value
	status.Store("")
	done := make(chan struct{})
	var conns []net.Conn
	t.Cleanup(func() {
		close(done)
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		conns = append(conns, c)
		_, err = c.Write([]byte(head))
		require.NoError(t, err)
		go func() {
			line, _ := bufio.NewReader(c).ReadString('\n')
			if line != "" {
				status.CompareAndSwap("", strings.TrimSpace(line))
			}
			_, _ = io.Copy(io.Discard, c)
			nclosed.Add(1)
		}()
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				case <-tick.C:
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
	}
	return func() int { return int(nclosed.Load()) }, func() string { return status.Load().(string) }
}

// readConns counts the server side of the established connections to the
// local port of addr whose received bytes have all been read (rx_queue 0
// in /proc/net/tcp): those whose request lifecycled has taken up.
func readConns(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	var p int
	_, err = fmt.Sscan(port, &p)
	require.NoError(t, err)
	b, err := os.ReadFile("/proc/net/tcp")
	require.NoError(t, err)
	n := 0
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", p)) && f[3] == "01" && strings.HasSuffix(f[4], ":00000000") {
			n++
		}
	}
	return n
}

// TestListenBusyConnections: clients that keep their connection busy (a
// request body, or the headers, trickled at one byte a second) never make
// a probe on a fresh connection wait: /readyz answers within the
// kubelet's default 1 s probe timeout with 130 of them connected (issue
// 17, point 4: 1-9.5 s before). The health endpoints take no body (413 at
// once, connection closed); the admin endpoints take one of at most
// 4 KiB, read within 1 s.
func TestListenBusyConnections(t *testing.T) {
	ctx := testContext(t, 120*time.Second)
	p, addr, admin := startWithAdmin(t, ctx)

	// freshReadyz probes /readyz 5 times on fresh connections, as the
	// kubelet does, and returns the longest answer.
	freshReadyz := func(t *testing.T) time.Duration {
		var took time.Duration
		for range 5 {
			sent := time.Now()
			assert.Equal(t, http.StatusOK, getStatus(ctx, "http://"+addr+"/readyz"))
			took = max(took, time.Since(sent))
		}
		return took
	}

	t.Run("slow bodies", func(t *testing.T) {
		closed, status := slowClients(t, ctx, addr, "GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n", 130)
		// Probe once lifecycled has taken up 128 of the requests (every
		// slot busy), or closed them all.
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		require.NoError(t, poll(wctx, func() bool { return closed() == 130 || readConns(t, addr) >= 128 }))
		took := freshReadyz(t)
		assert.Less(t, took, time.Second, "a fresh /readyz waits behind busy connections")
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		assert.NoError(t, poll(pctx, func() bool { return closed() == 130 }), "lifecycled closed %d of 130 slow-body connections", closed())
		assert.Equal(t, "HTTP/1.1 413 Request Entity Too Large", status())
		t.Logf("FIGURE 130 slow-body clients: a fresh /readyz in at most %s", took.Round(time.Millisecond))
	})

	t.Run("slow headers", func(t *testing.T) {
		slowClients(t, ctx, addr, "GET /readyz HTTP/1.1\r\nHost: x\r\n", 130)
		took := freshReadyz(t)
		assert.Less(t, took, time.Second, "a fresh /readyz waits behind busy connections")
		t.Logf("FIGURE 130 slow-header clients: a fresh /readyz in at most %s", took.Round(time.Millisecond))
	})

	t.Run("slow admin bodies", func(t *testing.T) {
		// Bodies the admin endpoints take (up to 4 KiB), trickled: every
		// slot is busy until each body's 1 s is over.
		slowClients(t, ctx, admin, "POST /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n", 130)
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		require.NoError(t, poll(wctx, func() bool { return readConns(t, admin) >= 128 }))
		sent := time.Now()
		assert.Equal(t, http.StatusMethodNotAllowed, getStatus(ctx, "http://"+admin+"/drain"))
		took := time.Since(sent)
		assert.Less(t, took, time.Second, "a fresh admin request waits behind busy connections")
		t.Logf("FIGURE 130 slow admin bodies: a fresh admin request in %s", took.Round(time.Millisecond))
	})

	t.Run("admin bodies", func(t *testing.T) {
		post := func(body io.Reader, length int64) int {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+admin+"/drain", body)
			require.NoError(t, err)
			req.ContentLength = length
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0
			}
			_ = resp.Body.Close()
			return resp.StatusCode
		}
		// Over 4 KiB: refused before a byte of it is read.
		assert.Equal(t, http.StatusRequestEntityTooLarge, post(strings.NewReader(strings.Repeat("x", 4<<10+1)), 4<<10+1), "a body over 4 KiB")
		// A body that does not come: cut off after 1 s.
		sent := time.Now()
		assert.Equal(t, "HTTP/1.1 408 Request Timeout",
			rawStatus(t, admin, "POST /drain HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"), "a body that does not come")
		assert.Less(t, time.Since(sent), 3*time.Second)
		assert.Equal(t, http.StatusOK, getStatus(ctx, "http://"+addr+"/readyz"), "no drain from a refused request")
		// A small body, as some clients send with every POST, is taken.
		assert.Equal(t, http.StatusOK, post(strings.NewReader("{}"), 2), "a 2-byte body")
		assert.Equal(t, http.StatusServiceUnavailable, getStatus(ctx, "http://"+addr+"/readyz"), "drained")
	})

	require.NoError(t, p.signal(ctx, syscall.SIGTERM))
	assert.Equal(t, 3, p.wait(ctx).code)
}
