package redact

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Core wraps a zap core so that every entry it writes has the passwords of
// its URLs masked: the message, string and error fields, and strings inside
// arrays and objects. Every logger lifecycled writes with (stderr, the hook
// log) is built on it, so no call site has to remember.
func Core(c zapcore.Core) zapcore.Core { return core{c} }

type core struct{ zapcore.Core }

func (c core) With(fs []zapcore.Field) zapcore.Core { return core{c.Core.With(fields(fs))} }

func (c core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c core) Write(e zapcore.Entry, fs []zapcore.Field) error {
	e.Message = URLs(e.Message)
	return c.Core.Write(e, fields(fs))
}

// fields returns fs with every string in it redacted; fs itself is not
// changed (zap may reuse it).
func fields(fs []zapcore.Field) []zapcore.Field {
	var out []zapcore.Field
	set := func(i int, f zapcore.Field) {
		if out == nil {
			out = append([]zapcore.Field(nil), fs...)
		}
		out[i] = f
	}
	for i, f := range fs {
		switch f.Type {
		case zapcore.StringType:
			if r := URLs(f.String); r != f.String {
				set(i, zap.String(f.Key, r))
			}
		case zapcore.ErrorType, zapcore.StringerType, zapcore.ArrayMarshalerType,
			zapcore.ObjectMarshalerType, zapcore.ReflectType:
			// Rendered once to find out; only fields that hold a URL
			// with a password are replaced.
			enc := zapcore.NewMapObjectEncoder()
			f.AddTo(enc)
			changed := false
			for k, v := range enc.Fields {
				if r, ok := value(v); ok {
					enc.Fields[k], changed = r, true
				}
			}
			if v, ok := enc.Fields[f.Key]; ok && changed {
				// A MapObjectEncoder value is a string, []any or
				// map[string]any. Not zap.Any: its generic cases
				// cost the binary 70 KB.
				if s, ok := v.(string); ok {
					set(i, zap.String(f.Key, s))
				} else {
					set(i, zap.Reflect(f.Key, v))
				}
			}
		}
	}
	if out == nil {
		return fs
	}
	return out
}

// value redacts the strings in a value rendered by MapObjectEncoder and
// reports whether any changed.
func value(v any) (any, bool) {
	switch v := v.(type) {
	case string:
		r := URLs(v)
		return r, r != v
	case []any:
		changed := false
		out := make([]any, len(v))
		for i, e := range v {
			var c bool
			out[i], c = value(e)
			changed = changed || c
		}
		return out, changed
	case map[string]any:
		changed := false
		out := make(map[string]any, len(v))
		for k, e := range v {
			var c bool
			out[k], c = value(e)
			changed = changed || c
		}
		return out, changed
	}
	return v, false
}
