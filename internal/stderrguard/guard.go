// Package stderrguard is lifecycled's stderr: it tells lifecycled's own
// SIGPIPEs from those sent to it, and drops the writes that could only stop
// it. When the reader of stderr is gone (a log collector that died,
// `lifecycled ... 2>&1 | head`), every log write fails with EPIPE and the
// kernel sends lifecycled SIGPIPE. os/signal cannot say where a signal came
// from, and forwarding these to the child, as every other SIGPIPE is, would
// kill the application for lifecycled's broken log.
package stderrguard

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Guard wraps stderr. It counts the writes in flight and remembers the last
// EPIPE, which a write records before it counts itself done.
//
// It also drops a write that could only stop lifecycled: stderr is a
// terminal, the child's group holds the foreground and `stty tostop` is
// set. The kernel would answer each such write with SIGTTOU, which
// lifecycled catches (and forwards), and the write would restart forever.
type Guard struct {
	w  io.Writer
	fd int // stderr's descriptor, -1 if w is not a file

	mu      sync.Mutex
	writing int           // writes in flight
	since   time.Time     // when writing last went from 0 to 1
	idle    chan struct{} // closed when writing drops back to 0
	epipe   time.Time     // when a write last failed with EPIPE
}

// New guards w; an *os.File is also checked for the terminal's TOSTOP.
func New(w io.Writer) *Guard {
	g := &Guard{w: w, fd: -1}
	if f, ok := w.(*os.File); ok {
		g.fd = int(f.Fd())
	}
	return g
}

func (g *Guard) Write(p []byte) (int, error) {
	if g.fd >= 0 && stoppedByTTY(g.fd) {
		return len(p), nil
	}
	g.mu.Lock()
	if g.writing == 0 {
		g.idle, g.since = make(chan struct{}), time.Now()
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

// OwnSIGPIPE reports whether the SIGPIPE being handled came from a write
// of g's: one failed with EPIPE in the last second, or does so among the
// writes in flight, which it waits for until they are 100 ms old: a write
// to a pipe whose reader is gone fails at once, and one that blocks on a
// stalled reader cannot have raised this SIGPIPE (nor may it delay the
// signals queued behind this one). A nil guard owns nothing.
func (g *Guard) OwnSIGPIPE() bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	idle := g.idle
	wait := time.Duration(0)
	if g.writing > 0 {
		wait = 100*time.Millisecond - time.Since(g.since)
	}
	g.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
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
