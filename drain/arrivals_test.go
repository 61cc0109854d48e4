package drain

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestArrivalsRealSockets runs real connections on 127.0.0.1 and ::1: ones
// open before the watch are not new; a kept-open one and one that opens and
// closes between two polls are, once each; connections to another port are
// not. (Counted by socket cookie, one of the counts was off by one in about
// 3 % of runs on a busy machine: see connID.)
func TestArrivalsRealSockets(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			watched := listenAccept(t, host)
			other := listenAccept(t, host)

			before := dial(t, watched.addr)
			<-watched.accepted

			a, err := WatchArrivals([]int{watched.port}, nil)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, a.Close()) })
			require.True(t, a.Exact(), "this kernel refuses sock_diag destruction reports")

			tr, err := a.Poll()
			require.NoError(t, err)
			assert.Equal(t, 0, tr.Arrivals, "a connection open before the watch is not new")

			// Traffic on the old connection and a connection to another
			// port are not arrivals.
			_, err = before.Write([]byte("ping"))
			require.NoError(t, err)
			dial(t, other.addr)
			<-other.accepted
			time.Sleep(50 * time.Millisecond)
			tr, err = a.Poll()
			require.NoError(t, err)
			assert.Equal(t, 0, tr.Arrivals, "old connection's traffic or another port's connection counted")

			// A new connection that stays open.
			dial(t, watched.addr)
			<-watched.accepted
			assert.Equal(t, 1, pollUntil(t, a, 1))

			// A connection that opens and closes between two polls, the
			// client closing first so that the server's end leaves no
			// TIME_WAIT behind.
			c := dial(t, watched.addr)
			s := <-watched.accepted
			require.NoError(t, c.Close())
			_, _ = io.Copy(io.Discard, s)
			require.NoError(t, s.Close())
			assert.Equal(t, 1, pollUntil(t, a, 1), "short connection between two polls")
		})
	}
}

// pollUntil polls a until it has counted want, then once more to check
// nothing else is counted, and returns the total.
func pollUntil(t *testing.T, a *Arrivals, want int) int {
	t.Helper()
	total := 0
	deadline := time.Now().Add(5 * time.Second)
	for total < want && time.Now().Before(deadline) {
		tr, err := a.Poll()
		require.NoError(t, err)
		total += tr.Arrivals
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	tr, err := a.Poll()
	require.NoError(t, err)
	return total + tr.Arrivals
}

func TestWatchArrivalsBadPort(t *testing.T) {
	for _, ports := range [][]int{nil, {0}, {70000}} {
		_, err := WatchArrivals(ports, nil)
		assert.ErrorContains(t, err, "watch new connections", "ports %v", ports)
	}
}

type acceptingListener struct {
	addr     string
	port     int
	accepted chan net.Conn
}

// listenAccept listens on a free port of host and accepts connections into
// accepted; everything is closed at the end of the test.
func listenAccept(t *testing.T, host string) acceptingListener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	l := acceptingListener{addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port, accepted: make(chan net.Conn, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		close(l.accepted)
		for c := range l.accepted {
			_ = c.Close()
		}
	})
	return l
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestArrivalsAccounting drives the counting rule with the events the
// kernel can deliver, in the orders it can deliver them, including those
// of a connection that is two sockets (see connID).
func TestArrivalsAccounting(t *testing.T) {
	conn := func(clientPort byte) connID {
		var id connID
		id[0], id[1], id[2], id[3], id[4] = 2, 0x1f, 0x90, 0xc0, clientPort // AF_INET, :8080 <- :49152+
		return id
	}
	a1, a2 := conn(1), conn(2)
	type event struct {
		alive     []connID // a dump at this time (ms since start)...
		destroyed *connID  // ...or a destruction report
		at        int
		want      int // the count after this event, when it is a dump
	}
	d := func(id connID) *connID { return &id }
	tests := []struct {
		name   string
		events []event
	}{
		{"a connection seen alive is new once", []event{
			{alive: []connID{a1}, at: 0, want: 1},
			{alive: []connID{a1}, at: 100, want: 0},
			{alive: []connID{a1, a2}, at: 200, want: 1},
			{destroyed: d(a1), at: 250},
			{alive: []connID{a2}, at: 300, want: 0},
		}},
		{"a connection that opens and closes between two dumps", []event{
			{alive: nil, at: 0, want: 0},
			{destroyed: d(a1), at: 50},
			{alive: nil, at: 100, want: 1},
		}},
		{"a dump under way when the connection went still lists it", []event{
			{destroyed: d(a1), at: 50},
			{alive: []connID{a1}, at: 40, want: 1},
			{alive: nil, at: 140, want: 0},
		}},
		{"the destroyed duplicate of a live connection, reported after it was seen", []event{
			{alive: []connID{a1}, at: 0, want: 1},
			{destroyed: d(a1), at: 10},
			{alive: []connID{a1}, at: 100, want: 0},
		}},
		{"the destroyed duplicate of a live connection, reported before it was seen", []event{
			{destroyed: d(a1), at: 10},
			{alive: nil, at: 100, want: 1},
			{alive: []connID{a1}, at: 200, want: 0},
			{alive: []connID{a1}, at: 5000, want: 0},
		}},
		{"the same addresses and ports long after the connection went are a new connection", []event{
			{destroyed: d(a1), at: 10},
			{alive: nil, at: 100, want: 1},
			{alive: nil, at: 100 + int(knownLinger/time.Millisecond), want: 0},
			{destroyed: d(a1), at: 200 + int(knownLinger/time.Millisecond)},
			{alive: nil, at: 300 + int(knownLinger/time.Millisecond), want: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Arrivals{known: map[connID]*seenConn{}}
			start := time.Now()
			for i, e := range tt.events {
				at := start.Add(time.Duration(e.at) * time.Millisecond)
				if e.destroyed != nil {
					a.seen(sighting{id: *e.destroyed, hasData: true}, at)
					continue
				}
				var alive []sighting
				for _, id := range e.alive {
					alive = append(alive, sighting{id: id, hasData: true})
				}
				a.seenAlive(alive, at)
				assert.Equal(t, e.want, a.fresh, "event %d", i)
				a.fresh = 0
			}
		})
	}
}
