package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/lifecycled/lifecycled/internal/logschema"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const wrkSample = `Running 3s test @ http://127.0.0.1:9090/readyz
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   412.00us    1.02ms  20.11ms   95.12%
    Req/Sec    22.11k     1.20k   24.00k    70.00%
  Latency Distribution
     50%  299.00us
     75%  400.00us
     90%    1.00ms
     99%    7.17ms
  132705 requests in 3.00s, 15.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  44235.12
Transfer/sec:      5.00MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	require.NoError(t, err)
	assert.InDelta(t, 44235.12, r.rps, 0.001)
	assert.Equal(t, 299*time.Microsecond, r.p50)
	assert.Equal(t, 7170*time.Microsecond, r.p99)
	assert.Equal(t, ", 3 non-2xx/3xx responses", r.errors)

	_, err = parseWrk("unable to connect to 127.0.0.1:9090 Connection refused\n")
	assert.Error(t, err)
}

func TestParseWrkDur(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"412.00us": 412 * time.Microsecond, "1.50ms": 1500 * time.Microsecond, "2.00s": 2 * time.Second, "1.00m": time.Minute,
	} {
		got, err := parseWrkDur(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := parseWrkDur("12")
	assert.Error(t, err)
}

// TestCountChecks reads waiter logs written in lifecycled's own log schema
// (logschema.EncoderConfig), so that a change of schema breaks this test
// rather than the bench's figures.
func TestCountChecks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "waiter.log")
	f, err := os.Create(path)
	require.NoError(t, err)
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(logschema.EncoderConfig()), f, zapcore.DebugLevel))
	start := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 9 * time.Second} {
		ce := logger.Check(zapcore.DebugLevel, "dependency not up")
		ce.Time = start.Add(at)
		ce.Write(zap.String("target", "tcp://127.0.0.1:1"))
	}
	logger.Info("dependencies up") // not a check
	require.NoError(t, f.Close())

	counts := map[string][]float64{"tcp://127.0.0.1:1": make([]float64, len(depsCostBins))}
	require.NoError(t, countChecks(path, counts))
	assert.Equal(t, []float64{2, 1, 1, 0, 1}, counts["tcp://127.0.0.1:1"])

	require.NoError(t, os.WriteFile(path, []byte(`{"msg":"dependency not up","ts":"2026-11-30T06:00:00Z"}`+"\n"), 0o644))
	assert.ErrorContains(t, countChecks(path, counts), "no time", "a log in another schema is an error, not zeros")
}
