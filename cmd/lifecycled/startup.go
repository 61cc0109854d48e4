package main

import (
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/lifecycled/lifecycled/redact"
)

// logStartup writes the one start-up line: what runs (version, commit, Go)
// and with which effective settings, after flags, environment and file, so
// that a log search finds how a container was configured without its spec.
func logStartup(logger *zap.Logger, cfg *runConfig) {
	ver, rev := buildVersion()
	if rev == "" {
		rev = "unknown"
	}
	fields := []zap.Field{
		zap.String("version", ver),
		zap.String("commit", rev),
		zap.String("go_version", runtime.Version()),
	}
	if cfg.settings != nil {
		fields = append(fields, zap.Object("settings", settingsLog{cfg.settings}))
	}
	logger.Info("starting", fields...)
}

// settingsLog writes every setting under its flag's name in snake_case,
// durations as NAME_seconds, secrets of URLs masked (redact.URL: each value as one).
type settingsLog struct{ s *settings }

func (l settingsLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	// declare binds its settings to the struct it is called on and resets
	// it to the defaults: bind a copy, then give it the effective values.
	var view settings
	decls := view.declare()
	view = *l.s
	for _, d := range decls {
		if d.name == "" {
			continue // a file-only key, which some flag already shows
		}
		key := strings.ReplaceAll(d.name, "-", "_")
		switch v := d.value.(type) {
		case *durationValue:
			enc.AddFloat64(key+"_seconds", time.Duration(*v).Seconds())
		case *boolValue:
			enc.AddBool(key, bool(*v))
		case *intValue:
			enc.AddInt(key, int(*v))
		case *listValue:
			if len(*v) > 0 {
				_ = enc.AddArray(key, redactedList(*v))
			}
		default:
			if s := d.value.String(); s != "" {
				enc.AddString(key, redact.URL(s))
			}
		}
	}
	return enc.AddArray("command", redactedList(view.Command))
}

type redactedList []string

func (l redactedList) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, s := range l {
		enc.AppendString(redact.URL(s))
	}
	return nil
}
