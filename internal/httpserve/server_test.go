package httpserve

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestConnLimiterVictim: over the cap, a new connection takes the place of
// the longest-idle one, else of the one busy longest once it has been busy
// for the limiter's busy time, else waits until then (issue 17, point 4:
// before, it waited for a busy connection to end, up to 10 s).
func TestConnLimiterVictim(t *testing.T) {
	now := time.Now()
	conns := make([]net.Conn, 3)
	for i := range conns {
		a, b := net.Pipe()
		t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
		conns[i] = a
	}
	tests := []struct {
		name     string
		infos    []connInfo
		want     int // index into conns, -1 for none
		wantWait time.Duration
	}{
		{"longest idle", []connInfo{{since: now.Add(-time.Second)}, {since: now.Add(-3 * time.Second)}, {busy: true, since: now.Add(-time.Hour)}}, 1, 0},
		{"idle before busy", []connInfo{{busy: true, since: now.Add(-time.Hour)}, {since: now}, {busy: true, since: now.Add(-time.Hour)}}, 1, 0},
		{"busy longest, over its time", []connInfo{{busy: true, since: now.Add(-300 * time.Millisecond)}, {busy: true, since: now.Add(-2 * time.Second)}, {busy: true, since: now}}, 1, 0},
		{"all busy briefly: wait", []connInfo{{busy: true, since: now.Add(-100 * time.Millisecond)}, {busy: true, since: now.Add(-50 * time.Millisecond)}, {busy: true, since: now}}, -1, 150 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newConnLimiter(nil, len(conns), 250*time.Millisecond)
			for i, info := range tt.infos {
				l.conns[conns[i]] = info
			}
			got, wait := l.victim(now)
			if tt.want < 0 {
				assert.Nil(t, got)
			} else {
				assert.Equal(t, conns[tt.want], got)
			}
			assert.Equal(t, tt.wantWait, wait)
		})
	}
}

// TestLoopback: the one rule for --admin-listen and the admin endpoints'
// Host header. A host name's letter case does not matter (LOCALHOST is
// localhost to the resolver); --admin-listen refused LOCALHOST:PORT while
// the Host check took it.
func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "LocalHost": true, "127.0.0.1": true, "127.8.9.1": true,
		"::1": true, "[::1]": true, "0.0.0.0": false, "": false, "10.0.0.1": false, "localhost.example.com": false, "::": false,
	} {
		assert.Equal(t, want, IsLoopback(host), host)
	}
	assert.NoError(t, CheckLoopback("LOCALHOST:9091"))
	assert.NoError(t, CheckLoopback("[::1]:9091"))
	assert.ErrorContains(t, CheckLoopback(":9091"), "is not a loopback address")
	assert.ErrorContains(t, CheckLoopback("0.0.0.0:9091"), "is not a loopback address")
	assert.ErrorContains(t, CheckLoopback("nope"), `admin address "nope": missing port in address`)
}

// TestBindAll: every endpoint with an address is bound; a busy address or a
// non-loopback admin address is the error the run exits 2 with.
func TestBindAll(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NoError(t, err)
	defer busy.Close()
	bound, err := BindAll(Endpoint{Addr: "127.0.0.1:0"}, Endpoint{}, Endpoint{Addr: "127.0.0.1:0", Loopback: true})
	assert.NoError(t, err)
	assert.Len(t, bound, 2, "the endpoint without an address is not served")
	for _, ep := range bound {
		_ = ep.Listener.Close()
	}
	first := Endpoint{Addr: "127.0.0.1:0"}
	_, err = BindAll(first, Endpoint{Addr: busy.Addr().String()})
	assert.ErrorContains(t, err, "listen on "+busy.Addr().String())
	_, err = BindAll(Endpoint{Addr: "0.0.0.0:0", Loopback: true})
	assert.ErrorContains(t, err, "is not a loopback address")
}
