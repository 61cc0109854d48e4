package drain

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEstablishedConnsRealSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	count := func() int {
		n, err := establishedConns("/proc", port)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, 0, count(), "a listening socket is not a connection")

	var clients, servers []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		clients = append(clients, c)
		servers = append(servers, <-accepted)
	}
	// Only the accepted side has PORT as its local port; the clients'
	// own ends, on ephemeral ports, are not inbound connections.
	assert.Eventually(t, func() bool { return count() == 3 }, 5*time.Second, 10*time.Millisecond)

	for i := range clients {
		require.NoError(t, clients[i].Close())
		require.NoError(t, servers[i].Close())
	}
	assert.Eventually(t, func() bool { return count() == 0 }, 5*time.Second, 10*time.Millisecond)
}

const procTCPHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

func TestEstablishedConnsParsing(t *testing.T) {
	// Port 8080 is 1F90; 55555 is D903.
	tcp := procTCPHeader +
		"   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n" + // listening
		"   1: 0100007F:1F90 0100007F:D903 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n" + // inbound, counted
		"   2: 0100007F:D903 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1\n" + // outbound to 8080, not counted
		"   3: 0100007F:1F90 0100007F:D904 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0\n" + // TIME_WAIT
		"   4: 0100007F:1F90 0100007F:D905 08 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1\n" + // CLOSE_WAIT
		"garbage\n"
	tcp6 := procTCPHeader +
		"   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D906 01 00000000:00000000 00:00000000 00000000     0        0 5 1 0 20 4 30 10 -1\n" +
		"   1: 00000000000000000000000001000000:1F91 00000000000000000000000001000000:D907 01 00000000:00000000 00:00000000 00000000     0        0 6 1 0 20 4 30 10 -1\n"

	tests := []struct {
		name    string
		tcp     *string
		tcp6    *string
		port    int
		want    int
		wantErr bool
	}{
		{name: "v4 and v6", tcp: &tcp, tcp6: &tcp6, port: 8080, want: 2},
		{name: "other port", tcp: &tcp, tcp6: &tcp6, port: 8081, want: 1},
		{name: "no ipv6", tcp: &tcp, port: 8080, want: 1},
		{name: "no port at all", tcp: &tcp, tcp6: &tcp6, port: 9999, want: 0},
		{name: "no tcp table", tcp6: &tcp6, port: 8080, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(root, "net"), 0o755))
			if tt.tcp != nil {
				require.NoError(t, os.WriteFile(filepath.Join(root, "net", "tcp"), []byte(*tt.tcp), 0o644))
			}
			if tt.tcp6 != nil {
				require.NoError(t, os.WriteFile(filepath.Join(root, "net", "tcp6"), []byte(*tt.tcp6), 0o644))
			}
			n, err := establishedConns(root, tt.port)
			if tt.wantErr {
				assert.ErrorContains(t, err, "count connections to port 8080")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
		})
	}
}
