package drain

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestArrivalsRequestBytes: the bytes a connection receives are counted,
// on a connection open before the watch (a pooled keep-alive one) as on a
// new one that comes and goes between two polls; an idle connection and a
// client's FIN count for nothing; the server's answers are not request
// bytes. IPv4 and IPv6.
func TestArrivalsRequestBytes(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			watched := listenAccept(t, host)
			pooled := dial(t, watched.addr)
			server := <-watched.accepted

			a, err := WatchArrivals([]int{watched.port}, nil)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, a.Close()) })

			sent := time.Now()
			_, err = pooled.Write([]byte("GET / HTTP/1.1\r\n\r\n")) // 18 bytes
			require.NoError(t, err)
			readN(t, server, 18)
			_, err = server.Write([]byte("HTTP/1.1 200 OK\r\n\r\n"))
			require.NoError(t, err)
			tr := pollTraffic(t, a, 18)
			assert.Equal(t, 0, tr.Arrivals, "a request on a pooled connection is no new connection")
			assert.Equal(t, uint64(18), tr.Bytes, "the request's bytes, not the answer's")
			// The kernel times it in jiffies (4 ms at HZ=250): not
			// before the write, give or take one, nor after the poll.
			if assert.False(t, tr.LastByte.IsZero()) {
				assert.False(t, tr.LastByte.Before(sent.Add(-10*time.Millisecond)), "last byte at %s, sent at %s", tr.LastByte, sent)
				assert.False(t, tr.LastByte.After(time.Now()), "last byte at %s, in the future", tr.LastByte)
			}

			time.Sleep(50 * time.Millisecond)
			tr, err = a.Poll()
			require.NoError(t, err)
			assert.Equal(t, Traffic{}, tr, "an idle connection")

			// The client closes: its FIN is no request byte.
			require.NoError(t, pooled.Close())
			_, _ = io.Copy(io.Discard, server)
			time.Sleep(50 * time.Millisecond)
			tr, err = a.Poll()
			require.NoError(t, err)
			assert.Equal(t, Traffic{}, tr, "a FIN")
			require.NoError(t, server.Close())

			// A connection that sends and closes between two polls:
			// its bytes come with its destruction report.
			sendAndClose(t, dial(t, watched.addr), watched, "hello")
			tr = pollTraffic(t, a, 5)
			assert.Equal(t, 1, tr.Arrivals)
			assert.Equal(t, uint64(5), tr.Bytes)
		})
	}
}

// TestArrivalsOwnDials: connections dialled through Dials.Control (the
// probes') are neither arrivals nor request bytes, whether they stay open
// or come and go between two polls, while another client's are.
func TestArrivalsOwnDials(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			watched := listenAccept(t, host)
			own := NewDials()
			a, err := WatchArrivals([]int{watched.port}, own)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, a.Close()) })

			d := net.Dialer{Control: own.Control}
			probe, err := d.DialContext(context.Background(), "tcp", watched.addr)
			require.NoError(t, err)
			t.Cleanup(func() { _ = probe.Close() })
			_, err = probe.Write([]byte("GET /healthz HTTP/1.1\r\n\r\n"))
			require.NoError(t, err)
			readN(t, <-watched.accepted, 25)
			short, err := d.DialContext(context.Background(), "tcp", watched.addr)
			require.NoError(t, err)
			sendAndClose(t, short, watched, "ping")

			// Another client, after the probes: once it is counted,
			// the probes' reports have been read too.
			other := dial(t, watched.addr)
			_, err = other.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
			require.NoError(t, err)
			readN(t, <-watched.accepted, 18)
			tr := pollTraffic(t, a, 18)
			assert.Equal(t, 1, tr.Arrivals, "only the other client's connection")
			assert.Equal(t, uint64(18), tr.Bytes, "only the other client's bytes")
		})
	}
}

// TestArrivalsUnprivileged: an unprivileged lifecycled (a pod's non-root
// user) sees other users' connections and the bytes they receive. The test
// binary watches as nobody a connection root made.
func TestArrivalsUnprivileged(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	watched := listenAccept(t, "127.0.0.1")
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	bin := filepath.Join(dir, "drain.test")
	copyFile(t, os.Args[0], bin)
	out := filepath.Join(dir, "out")
	require.NoError(t, os.WriteFile(out, nil, 0o666))
	require.NoError(t, os.Chmod(out, 0o666))

	c := dial(t, watched.addr)
	s := <-watched.accepted
	p := startProc(t, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, helperArg, "watch-bytes", strconv.Itoa(watched.port), out)
	require.Eventually(t, func() bool { return strings.Contains(readFile(out), "ready") }, 10*time.Second, 5*time.Millisecond,
		"the helper watches: %s", readFile(out))
	_, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	require.NoError(t, err)
	readN(t, s, 18)
	<-p.Done()
	assert.Contains(t, readFile(out), "uid=65534 arrivals=0 bytes=18", "what nobody saw")
}

// watchBytes is the helper of TestArrivalsUnprivileged: watch port, write
// "ready", poll until bytes arrive (at most 10 s), write what was seen.
func watchBytes(port int, out string) int {
	a, err := WatchArrivals([]int{port}, nil)
	if err != nil {
		appendLine(out, err.Error())
		return 1
	}
	defer a.Close()
	appendLine(out, "ready")
	var total Traffic
	for deadline := time.Now().Add(10 * time.Second); total.Bytes == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		tr, err := a.Poll()
		if err != nil {
			appendLine(out, err.Error())
			return 1
		}
		total.Arrivals += tr.Arrivals
		total.Bytes += tr.Bytes
	}
	appendLine(out, fmt.Sprintf("uid=%d arrivals=%d bytes=%d", os.Getuid(), total.Arrivals, total.Bytes))
	return 0
}

// pollTraffic polls a until it has counted want bytes or 5 s passed, then
// once more, and returns the sum.
func pollTraffic(t *testing.T, a *Arrivals, want uint64) Traffic {
	t.Helper()
	var sum Traffic
	add := func() {
		tr, err := a.Poll()
		require.NoError(t, err)
		sum.Arrivals += tr.Arrivals
		sum.Bytes += tr.Bytes
		if tr.LastByte.After(sum.LastByte) {
			sum.LastByte = tr.LastByte
		}
	}
	for deadline := time.Now().Add(5 * time.Second); sum.Bytes < want && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		add()
	}
	time.Sleep(50 * time.Millisecond)
	add()
	return sum
}

// sendAndClose sends msg on c, a new connection to l, and closes both ends
// once the server has read it, the client first.
func sendAndClose(t *testing.T, c net.Conn, l acceptingListener, msg string) {
	t.Helper()
	_, err := c.Write([]byte(msg))
	require.NoError(t, err)
	s := <-l.accepted
	readN(t, s, len(msg))
	require.NoError(t, c.Close())
	_, _ = io.Copy(io.Discard, s)
	require.NoError(t, s.Close())
}

func readN(t *testing.T, c net.Conn, n int) {
	t.Helper()
	_, err := io.ReadFull(bufio.NewReader(c), make([]byte, n))
	require.NoError(t, err)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o755))
}
