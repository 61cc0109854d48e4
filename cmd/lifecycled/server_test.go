package main

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
