// Package logschema is the one schema of every JSON line lifecycled writes:
// its stderr logs (every package's) and the hook log. A log pipeline (Loki,
// Elasticsearch, Cloud Logging) then needs one parser for all of them.
//
//   - "time": RFC 3339 with nanoseconds, always UTC ("Z"), the key Go's
//     log/slog and Cloud Logging's structured logs use;
//   - "level": debug, info, warn, error; "msg": the message; "logger": the
//     component ("lifecycled", "lifecycled.http");
//   - every other key is snake_case (exit_code, http_status, start_time),
//     the style of zap's and Elastic's field names;
//   - a duration is a number of seconds (a float) whose key ends in
//     "_seconds" (duration_seconds, grace_period_seconds): a string such as
//     "360.64µs" can be neither summed nor compared by a pipeline.
package logschema

import (
	"regexp"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Key matches a key of the schema: snake_case, lower case letters and
// digits. Compiled on first use: tests read it, lifecycled's start need not
// pay for it.
var Key = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`) })

// EncoderConfig is the zap encoder configuration of the schema. A
// zap.Duration that slips through is still encoded as seconds.
func EncoderConfig() zapcore.EncoderConfig {
	return zapcore.EncoderConfig{
		TimeKey:        "time",
		LevelKey:       "level",
		NameKey:        "logger",
		MessageKey:     "msg",
		StacktraceKey:  "stacktrace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     utcRFC3339Nano,
		EncodeDuration: zapcore.SecondsDurationEncoder,
		EncodeName:     zapcore.FullNameEncoder,
	}
}

func utcRFC3339Nano(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendString(t.UTC().Format(time.RFC3339Nano))
}

// Seconds is the field NAME_seconds holding d as a number of seconds.
func Seconds(name string, d time.Duration) zap.Field {
	return zap.Float64(name+"_seconds", d.Seconds())
}

// Time is the field NAME holding t in the schema's time format.
func Time(name string, t time.Time) zap.Field {
	return zap.String(name, t.UTC().Format(time.RFC3339Nano))
}
