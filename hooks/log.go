package hooks

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/lifecycled/lifecycled/internal/background"
	"github.com/lifecycled/lifecycled/internal/logschema"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/internal/sharedfile"
)

// defaultLogMaxBytes is the size at which the hook log is rotated when
// OpenLog is given no size.
const defaultLogMaxBytes = 1 << 20

// Log is the --hook-log-dir file: JSON lines, one per hook run and one
// per phase change, for whoever reads the shared volume (a log shipper, a
// sidecar, a human with kubectl cp). It never blocks or fails the
// container: when the file cannot be written it says so once on the main
// logger and tries again on the next line, and lines are written off the
// caller's path (package background), so a hung volume never delays a
// step of the stop sequence.
//
// A nil *Log discards everything, so callers need not check whether
// --hook-log-dir was given.
type Log struct {
	file   *rotatingFile
	queue  *background.Queue // lines go to file off the caller's path
	logger *zap.Logger
}

// logQueueLines bounds the lines waiting for a slow or hung volume.
const logQueueLines = 256

// logFlushMax bounds how long Close waits for queued lines.
const logFlushMax = time.Second

// OpenLog opens DIR/NAME.hooks.log, creating DIR if needed, and rotates
// it to NAME.hooks.log.1 when it passes maxBytes (defaultLogMaxBytes if
// zero or less). It returns nil when dir is empty. It never fails: a
// problem is reported once on logger and retried on later writes.
func OpenLog(dir, name string, maxBytes int64, logger *zap.Logger) *Log {
	if dir == "" {
		return nil
	}
	if maxBytes <= 0 {
		maxBytes = defaultLogMaxBytes
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	f := &rotatingFile{
		path:     filepath.Join(dir, name+".hooks.log"),
		maxBytes: maxBytes,
		logger:   logger,
	}
	q := background.New(logQueueLines)
	// The directory is created once, at start. If it vanishes later (the
	// volume went away), recreating it would write to the container's own
	// file system where nobody looks, so later writes only wait for it to
	// come back. Both are done on the queue, like every write: a volume
	// that hangs, or a FIFO someone put at the file's name, must not hold
	// the child's start or the handling of a signal.
	q.Go(func() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.mu.Lock()
			f.fail(fmt.Errorf("create hook log dir %s: %w", dir, err))
			f.mu.Unlock()
			return
		}
		f.mu.Lock()
		f.ensureOpen()
		f.mu.Unlock()
	})

	// The schema of lifecycled's stderr logs, so one parser reads both.
	enc := zapcore.NewJSONEncoder(logschema.EncoderConfig())
	core := zapcore.NewCore(enc, zapcore.AddSync(q.Writer(f)), zapcore.DebugLevel)
	// rotatingFile reports its own failures, once; zap's error output
	// would repeat them on every line.
	return &Log{
		file:   f,
		queue:  q,
		logger: zap.New(redact.Core(core), zap.ErrorOutput(zapcore.AddSync(io.Discard))),
	}
}

// Hook writes one line for a hook run.
func (l *Log) Hook(res Result) {
	if l == nil {
		return
	}
	fields := []zap.Field{
		zap.String("hook", res.Hook),
		zap.String("handler", res.Handler),
	}
	if res.Handler == HandlerHTTPGet {
		fields = append(fields, zap.String("url", redact.URL(res.Command))) // whole: a space in its query would end it for the core
	} else {
		fields = append(fields, zap.String("command", res.Command))
	}
	fields = append(fields,
		logschema.Time("start_time", res.Start),
		logschema.Seconds("duration", res.Duration),
	)
	switch res.Handler {
	case HandlerExec:
		fields = append(fields, zap.Int("exit_code", res.ExitCode))
	case HandlerHTTPGet:
		fields = append(fields, zap.Int("http_status", res.HTTPStatus))
	}
	fields = append(fields, zap.String("output", res.Output))
	if res.Err != nil {
		fields = append(fields, zap.String("error", res.Err.Error()))
		l.logger.Warn("hook failed", fields...)
		return
	}
	l.logger.Info("hook succeeded", fields...)
}

// Phase writes one line for a phase change of the child with pid (0 when
// there is none yet).
func (l *Log) Phase(phase string, pid int) {
	if l == nil {
		return
	}
	l.logger.Info("phase", zap.String("phase", phase), zap.Int("pid", pid))
}

// Close writes what is queued, waiting at most a second for a hung volume,
// and closes the file; later lines are dropped.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	if !l.queue.Close(logFlushMax) {
		return fmt.Errorf("hook log %s: lines still queued after %s", l.file.path, logFlushMax)
	}
	return l.file.Close()
}

// rotatingFile is a zapcore.WriteSyncer that rotates by size and swallows
// its errors after reporting them: a hook log on a broken volume must cost
// the container nothing but one warning.
type rotatingFile struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	logger   *zap.Logger
	f        *os.File
	size     int64
	failing  bool // an outage has been reported and not yet recovered from
	closed   bool
}

// Write always reports success to zap, see rotatingFile.
func (w *rotatingFile) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	if w.f != nil && !w.stillThere() {
		// Deleted or moved away (the directory was removed, or an
		// outside logrotate ran): writing on would go to an unlinked
		// file nobody can read.
		_ = w.f.Close()
		w.f = nil
	}
	if w.f == nil && !w.ensureOpen() {
		return len(p), nil
	}
	if w.size > 0 && w.size+int64(len(p)) > w.maxBytes {
		if !w.rotate() {
			return len(p), nil
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	if err != nil {
		_ = w.f.Close()
		w.f = nil
		w.fail(fmt.Errorf("write hook log %s: %w", w.path, err))
		return len(p), nil
	}
	w.recovered()
	return len(p), nil
}

// Sync is left to the OS: an fsync per line would stall hooks on a slow
// volume, and a lost line on a node crash costs little.
func (w *rotatingFile) Sync() error { return nil }

func (w *rotatingFile) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close hook log %s: %w", w.path, err)
	}
	return nil
}

// ensureOpen opens the file for appending, reporting a failure; w.mu must
// be held.
func (w *rotatingFile) ensureOpen() bool {
	if w.f != nil {
		return true
	}
	// Never through a symlink, never blocked by a FIFO, only a regular
	// file: see package sharedfile.
	f, _, err := sharedfile.Open(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		w.fail(fmt.Errorf("open hook log: %w", err))
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		w.fail(fmt.Errorf("stat hook log: %w", err))
		return false
	}
	w.f, w.size = f, fi.Size()
	return true
}

// stillThere reports whether w.f is still the file at w.path; w.mu must be
// held.
func (w *rotatingFile) stillThere() bool {
	onDisk, err := os.Lstat(w.path)
	if err != nil {
		return false
	}
	open, err := w.f.Stat()
	if err != nil {
		return false
	}
	return os.SameFile(onDisk, open)
}

// rotate keeps one old file, NAME.hooks.log.1: enough to see the run
// before last, bounded on a small shared volume. w.mu must be held.
func (w *rotatingFile) rotate() bool {
	_ = w.f.Close()
	w.f = nil
	if err := os.Rename(w.path, w.path+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.fail(fmt.Errorf("rotate hook log: %w", err))
		return false
	}
	return w.ensureOpen()
}

// fail reports err once per outage, so that a volume that stays broken
// logs one warning rather than one per hook; w.mu must be held (or w not
// yet shared).
func (w *rotatingFile) fail(err error) {
	if w.failing {
		return
	}
	w.failing = true
	w.logger.Warn("hook log unavailable, carrying on without it; will retry", zap.String("path", w.path), zap.Error(err))
}

func (w *rotatingFile) recovered() {
	if !w.failing {
		return
	}
	w.failing = false
	w.logger.Info("hook log writable again", zap.String("path", w.path))
}
