package settings

import (
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/lifecycled/lifecycled/internal/redact"
)

// MarshalLogObject writes every setting under its flag's name in
// snake_case, durations as NAME_seconds, secrets of URLs masked
// (redact.URL: each value as one): the start-up line's "settings".
func (s *Settings) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, d := range s.declare() {
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
			if text := d.value.String(); text != "" {
				enc.AddString(key, redact.URL(text))
			}
		}
	}
	return enc.AddArray("command", redactedList(s.Command))
}

type redactedList []string

func (l redactedList) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, s := range l {
		enc.AppendString(redact.URL(s))
	}
	return nil
}
