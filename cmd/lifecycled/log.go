package main

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/lifecycled/lifecycled/internal/logschema"
	"github.com/lifecycled/lifecycled/internal/redact"
)

// newLogger builds lifecycled's own logger. It writes to w (stderr): stdout
// belongs to the child alone.
func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", level)
	}
	encCfg := logschema.EncoderConfig()
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("bad --log-format %q: want json or console", format)
	}
	sink := zapcore.Lock(zapcore.AddSync(w))
	// zap reports its own write errors on ErrorOutput, os.Stderr by
	// default: it goes through w as well, so that the stderr guard (internal/stderrguard) sees it.
	// redact.Core: no log line shows the password of a URL (a target, a
	// hook, an error naming either).
	return zap.New(redact.Core(zapcore.NewCore(enc, sink, lvl)), zap.ErrorOutput(sink)).Named("lifecycled"), nil
}
