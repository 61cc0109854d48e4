package logschema

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestEncoderConfig(t *testing.T) {
	var buf bytes.Buffer
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(EncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)).Named("lifecycled")
	logger.Info("hello", Seconds("grace_period", 1500*time.Millisecond), zap.Duration("stray", 250*time.Millisecond),
		Time("start_time", time.Date(2026, 11, 30, 3, 0, 0, 5, time.FixedZone("X", 3600))))

	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	assert.Equal(t, "info", line["level"])
	assert.Equal(t, "hello", line["msg"])
	assert.Equal(t, "lifecycled", line["logger"])
	assert.Equal(t, 1.5, line["grace_period_seconds"])
	assert.Equal(t, 0.25, line["stray"], "a zap.Duration is seconds too")
	assert.Equal(t, "2026-11-30T02:00:00.000000005Z", line["start_time"])
	ts, err := time.Parse(time.RFC3339Nano, line["time"].(string))
	require.NoError(t, err)
	assert.Equal(t, time.UTC, ts.Location())
	assert.Regexp(t, `Z$`, line["time"])
	for k := range line {
		assert.Regexp(t, Key(), k)
	}
}

func TestKey(t *testing.T) {
	for _, k := range []string{"time", "exit_code", "grace_period_seconds", "http_status", "a1_b2"} {
		assert.Regexp(t, Key(), k)
	}
	for _, k := range []string{"ts_", "exitCode", "gracePeriod", "Time", "_x", "a__b", "durationSeconds", ""} {
		assert.NotRegexp(t, Key(), k)
	}
}
