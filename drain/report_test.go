package drain

import (
	"math"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/proctest"
	"github.com/lifecycled/lifecycled/internal/promtest"
)

func dialKept(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestSequenceReport stops a real child while real clients hold
// connections to the app's port, send a request byte and open a new
// connection during a fixed drain: the report says when the last of each
// came, how many connections the stop signal and SIGKILL met, whether
// SIGKILL was needed and the share of the grace budget used, and the
// metrics say the same.
func TestSequenceReport(t *testing.T) {
	const (
		drainDelay = time.Second
		tgp        = 10 * time.Second
		byteAt     = 150 * time.Millisecond
		dialAt     = 300 * time.Millisecond
	)
	for _, tc := range []struct {
		name   string
		mode   string
		grace  time.Duration
		killed bool
	}{
		{name: "the app exits on the stop signal", mode: "exit-on-term", grace: 20 * time.Second},
		{name: "the app ignores it: SIGKILL", mode: "ignore-term", grace: 300 * time.Millisecond, killed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := proctest.HoldingServer(t)
			held := dialKept(t, port)
			dialKept(t, port)
			_, err := held.Write([]byte("GET / HTTP/1.1\r\n")) // before the stop: not the stop's
			require.NoError(t, err)

			proc, _ := startHelper(t, tc.mode)
			reg := prometheus.NewPedanticRegistry()
			m := NewMetrics(reg)
			cfg := Config{DrainDelay: drainDelay, QuietPorts: []int{port}, PollConns: 20 * time.Millisecond,
				GracePeriod: tc.grace, TerminationGracePeriod: tgp}
			seq := NewSequence(cfg, proc, nil, zap.NewNop(), m, nil)
			later := make(chan net.Conn, 1)
			time.AfterFunc(byteAt, func() { _, _ = held.Write([]byte("Host: x\r\n")) })
			time.AfterFunc(dialAt, func() {
				c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
				if err == nil {
					later <- c
				}
			})
			var killed bool
			proctest.Within(t, 20*time.Second, func() { killed = seq.Run(nil) })
			select {
			case c := <-later:
				t.Cleanup(func() { _ = c.Close() })
			default:
				t.Fatal("the connection during the drain was never made")
			}
			r := seq.Report()

			assert.Equal(t, tc.killed, killed)
			assert.Equal(t, tc.killed, r.Killed)
			assert.True(t, r.Watched)
			assert.Equal(t, []int{port}, r.Ports)
			assert.Equal(t, 1, r.Arrivals, "the connection opened during the drain")
			assert.Equal(t, uint64(len("Host: x\r\n")), r.RequestBytes, "the bytes sent during the drain")
			assert.GreaterOrEqual(t, r.LastRequestByte, byteAt-20*time.Millisecond)
			assert.Less(t, r.LastRequestByte, drainDelay)
			assert.GreaterOrEqual(t, r.LastArrival, dialAt)
			assert.Less(t, r.LastArrival, drainDelay)
			assert.GreaterOrEqual(t, r.StopSignalAt, drainDelay)
			assert.Equal(t, 3, r.OpenAtStopSignal, "two held, one opened during the drain")
			if tc.killed {
				assert.Equal(t, 3, r.OpenAtKill, "the client's connections are still open when SIGKILL comes")
				assert.Contains(t, r.Summary(), "SIGKILL needed, 3 connection(s) cut")
				assert.True(t, r.Warning())
			} else {
				assert.Equal(t, 0, r.OpenAtKill)
				assert.Contains(t, r.Summary(), "no SIGKILL")
				assert.False(t, r.Warning())
			}
			assert.GreaterOrEqual(t, r.Took, r.StopSignalAt)
			assert.InDelta(t, r.Took.Seconds()/tgp.Seconds(), r.GraceUsed(), 1e-9)
			assert.Contains(t, r.Summary(), "with 3 connection(s) open")
			assert.Contains(t, r.Summary(), "of 10s grace (")

			value := func(name string) float64 { return promtest.Value(t, reg, name, map[string]string{}) }
			assert.InDelta(t, r.LastRequestByte.Seconds(), value("lifecycled_drain_last_request_seconds"), 1e-9)
			assert.InDelta(t, r.LastArrival.Seconds(), value("lifecycled_drain_last_connection_seconds"), 1e-9)
			assert.Equal(t, 3.0, value("lifecycled_drain_connections_at_stop_signal"))
			assert.Equal(t, float64(r.OpenAtKill), value("lifecycled_drain_connections_at_sigkill"))
			assert.Equal(t, map[bool]float64{true: 1, false: 0}[tc.killed], value("lifecycled_drain_sigkill"))
			assert.InDelta(t, r.Took.Seconds(), value("lifecycled_drain_stop_seconds"), 1e-9)
			assert.InDelta(t, r.GraceUsed(), value("lifecycled_drain_grace_used_ratio"), 1e-9)
		})
	}
}

// With no port of the app known, the report says so: its traffic and
// connection figures are unknown (left out of the line, NaN in the
// metrics), never a 0 that would read as "nothing came".
func TestSequenceReportNotWatched(t *testing.T) {
	proc, _ := startHelper(t, "exit-on-term")
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	seq := NewSequence(Config{GracePeriod: 20 * time.Second}, proc, nil, zap.NewNop(), m, nil)
	proctest.Within(t, 20*time.Second, func() { seq.Run(nil) })
	r := seq.Report()
	assert.False(t, r.Watched)
	assert.Equal(t, time.Duration(-1), r.LastArrival)
	assert.Equal(t, time.Duration(-1), r.LastRequestByte)
	assert.Equal(t, -1, r.OpenAtStopSignal)
	assert.Equal(t, -1, r.OpenAtKill)
	assert.GreaterOrEqual(t, r.StopSignalAt, time.Duration(0))
	assert.Equal(t, -1.0, r.GraceUsed())
	assert.Contains(t, r.Summary(), "traffic not watched")

	logger, logs := observed()
	logger.Info("drain report", r.Fields()...)
	fields := logs.All()[0].ContextMap()
	for _, key := range []string{"last_arrival_after_seconds", "last_request_byte_after_seconds", "connections_at_stop_signal",
		"connections_at_sigkill", "grace_used", "arrivals"} {
		assert.NotContains(t, fields, key)
	}
	assert.Equal(t, false, fields["sigkill"])
	assert.Contains(t, fields, "took_seconds")

	for _, name := range []string{"lifecycled_drain_last_request_seconds", "lifecycled_drain_last_connection_seconds",
		"lifecycled_drain_connections_at_stop_signal", "lifecycled_drain_connections_at_sigkill", "lifecycled_drain_grace_used_ratio"} {
		assert.True(t, math.IsNaN(promtest.Value(t, reg, name, map[string]string{})), name)
	}
}
