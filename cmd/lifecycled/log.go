package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

// newLogger builds lifecycled's own logger. It writes to w (stderr): stdout
// belongs to the child alone.
func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", level)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
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
	// default: it goes through w as well, so that epipeGuard sees it.
	return zap.New(zapcore.NewCore(enc, sink, lvl), zap.ErrorOutput(sink)).Named("lifecycled"), nil
}

// epipeGuard is lifecycled's stderr. It tells lifecycled's own SIGPIPEs from
// those sent to it. When the reader of stderr is gone (a log collector that
// died, `lifecycled ... 2>&1 | head`), every log write fails with EPIPE and
// the kernel sends lifecycled SIGPIPE. os/signal cannot say where a signal
// came from, and forwarding these to the child, as every other SIGPIPE is,
// would kill the application for lifecycled's broken log. The guard counts
// the writes in flight and remembers the last EPIPE, which a write records
// before it counts itself done.
//
// It also drops a write that could only stop lifecycled: stderr is a
// terminal, the child's group holds the foreground and `stty tostop` is
// set. The kernel would answer each such write with SIGTTOU, which
// lifecycled catches (and forwards), and the write would restart forever.
type epipeGuard struct {
	w  io.Writer
	fd int // stderr's descriptor, -1 if w is not a file

	mu      sync.Mutex
	writing int           // writes in flight
	idle    chan struct{} // closed when writing drops back to 0
	epipe   time.Time     // when a write last failed with EPIPE
}

func (g *epipeGuard) Write(p []byte) (int, error) {
	if g.fd >= 0 && stoppedByTTY(g.fd) {
		return len(p), nil
	}
	g.mu.Lock()
	if g.writing == 0 {
		g.idle = make(chan struct{})
	}
	g.writing++
	g.mu.Unlock()
	n, err := g.w.Write(p)
	g.mu.Lock()
	g.writing--
	if errors.Is(err, syscall.EPIPE) {
		g.epipe = time.Now()
	}
	if g.writing == 0 {
		close(g.idle)
	}
	g.mu.Unlock()
	return n, err
}

// ownSIGPIPE reports whether the SIGPIPE being handled came from a write
// of g's: one failed with EPIPE in the last second, or does so among the
// writes in flight, which it waits for, at most 100 ms: a write to a pipe
// whose reader is gone fails at once, and one that blocks on a stalled
// reader cannot have raised this SIGPIPE. A nil guard owns nothing.
func (g *epipeGuard) ownSIGPIPE() bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	idle := g.idle
	writing := g.writing > 0
	g.mu.Unlock()
	if writing {
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-idle:
		case <-t.C:
		}
		t.Stop()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.epipe.IsZero() && time.Since(g.epipe) < time.Second
}

// stoppedByTTY reports whether writing to fd would stop this process: fd is
// a terminal whose foreground group is not ours and whose TOSTOP is set.
func stoppedByTTY(fd int) bool {
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || pgrp == unix.Getpgrp() {
		return false // not a terminal, or ours
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil && t.Lflag&unix.TOSTOP != 0
}

// logQueue stands between lifecycled's logger and its stderr, so that
// logging never blocks supervision. A stderr that nobody reads (a log
// driver whose backend is down, a FIFO) blocks every write once its buffer
// is full; written in line, the "stop requested" line would keep SIGTERM
// from reaching the child and the "grace period over" warning would keep
// SIGKILL from being sent. Write only queues a copy of the line and never
// waits: when the queue is full the line is dropped and counted, and once
// the writer catches up it reports how many were lost (report), and
// lifecycled_log_lines_dropped_total counts them all. The child's own
// stdio does not go through here: it is handed over as it is.
type logQueue struct {
	out   io.Writer
	lines chan []byte
	done  chan struct{} // closed when the writer has written everything

	// report, if set before the first Write, is called by the writer
	// with the number of lines dropped since the last report, once the
	// queue is empty again; it logs them (through the queue).
	report func(n uint64)

	mu         sync.RWMutex // Write holds it shared; close takes it
	closed     bool
	dropped    atomic.Uint64 // every line dropped so far
	unreported atomic.Uint64 // dropped since the last report
}

// logQueueLines bounds the queue: about 300 KiB of JSON lines, minutes of
// lifecycled's logging at info level.
const logQueueLines = 1024

func newLogQueue(out io.Writer, size int) *logQueue {
	q := &logQueue{out: out, lines: make(chan []byte, size), done: make(chan struct{})}
	go q.write()
	return q
}

// Write queues a copy of p, or drops it if the queue is full. It never
// blocks and never fails: a log line is not worth stopping for.
func (q *logQueue) Write(p []byte) (int, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return len(p), nil
	}
	select {
	case q.lines <- bytes.Clone(p):
	default:
		q.dropped.Add(1)
		q.unreported.Add(1)
	}
	return len(p), nil
}

// Sync does not wait for the queue: see close.
func (q *logQueue) Sync() error { return nil }

// Dropped returns how many lines were dropped since the start.
func (q *logQueue) Dropped() uint64 { return q.dropped.Load() }

func (q *logQueue) write() {
	defer close(q.done)
	for line := range q.lines {
		_, _ = q.out.Write(line)
		if len(q.lines) == 0 && q.report != nil {
			if n := q.unreported.Swap(0); n > 0 {
				q.report(n)
			}
		}
	}
}

// close stops taking lines and waits, at most max, for the queued ones to
// be written. It reports whether they all were: a stderr that nobody reads
// must not keep lifecycled from exiting.
func (q *logQueue) close(max time.Duration) bool {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.lines)
	}
	q.mu.Unlock()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-q.done:
		return true
	case <-t.C:
		return false
	}
}
