package supervisor

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Forwarder passes signals on to the child. Signals that arrive before the
// child exists are remembered in order and delivered when it starts: a
// SIGHUP sent while dependencies are still being waited for is neither lost
// nor fatal.
type Forwarder struct {
	remap     SignalMap
	onForward func(sig syscall.Signal)

	mu       sync.Mutex
	child    *Child
	pending  []syscall.Signal
	flushing bool // pending signals are being delivered; new ones queue behind
}

// handlerWait bounds how long a remembered signal waits for the new child
// to install a handler for it.
const handlerWait = 5 * time.Second

// NewForwarder returns a Forwarder that rewrites signals through remap and
// calls onForward (may be nil) for every signal delivered.
func NewForwarder(remap SignalMap, onForward func(sig syscall.Signal)) *Forwarder {
	if onForward == nil {
		onForward = func(syscall.Signal) {}
	}
	return &Forwarder{remap: remap, onForward: onForward}
}

// Forward delivers sig to the child, or keeps it for when the child starts
// (and behind the remembered ones, so that order is kept).
func (f *Forwarder) Forward(sig syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.child == nil || f.flushing {
		f.pending = append(f.pending, sig)
		return nil
	}
	return f.send(sig)
}

// Remember keeps sig like a signal that came before the child started,
// behind the others kept: it is for a signal lifecycled caught before the
// start but handles after it (the child is forked before the signal actor
// runs). Sent at once, it would reach a child that has no handler yet.
func (f *Forwarder) Remember(sig syscall.Signal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, sig)
	f.startFlush()
}

// Attach sets the child and delivers the signals kept so far, in order, in
// the background. A freshly exec'd child has no handlers yet, and a
// remembered SIGUSR1 sent at once would kill it (the default action) before
// its code ran: each remembered signal whose default is to end or stop the
// process waits, up to 5 s, until the child catches or ignores it.
func (f *Forwarder) Attach(c *Child) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.child = c
	f.startFlush()
}

// startFlush delivers the kept signals in the background once there is a
// child, unless a delivery is already under way. Must be called with f.mu
// held.
func (f *Forwarder) startFlush() {
	if f.child != nil && !f.flushing && len(f.pending) > 0 {
		f.flushing = true
		go f.flush()
	}
}

func (f *Forwarder) flush() {
	for {
		f.mu.Lock()
		if len(f.pending) == 0 {
			f.flushing = false
			f.mu.Unlock()
			return
		}
		sig := f.pending[0]
		f.pending = f.pending[1:]
		c := f.child
		f.mu.Unlock()

		waitHandled(c, f.remap.Map(sig), handlerWait)
		f.mu.Lock()
		_ = f.send(sig) // the child may be gone: nothing left to tell
		f.mu.Unlock()
	}
}

func (f *Forwarder) send(sig syscall.Signal) error {
	to := f.remap.Map(sig)
	err := f.child.Signal(to)
	f.onForward(to) // counted after the kill: the child need not wait for a metric
	return err
}

// waitHandled waits, at most max, until the child catches or ignores sig
// (SigCgt or SigIgn in /proc/PID/status), or exits. Signals whose default
// is to be ignored cannot hurt and do not wait.
func waitHandled(c *Child, sig syscall.Signal, max time.Duration) {
	switch sig {
	case unix.SIGCONT, unix.SIGWINCH, unix.SIGURG, unix.SIGCHLD:
		return
	}
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	pause := time.Millisecond
	for !handles(c.Pid(), sig) {
		select {
		case <-c.Exited():
			return
		case <-deadline.C:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// handles reports whether pid catches or ignores sig; on any doubt (no
// /proc, process gone) it says yes, so that nothing waits in vain.
func handles(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return true
	}
	var mask uint64
	for _, line := range strings.Split(string(b), "\n") {
		for _, field := range []string{"SigCgt:", "SigIgn:"} {
			if v, ok := strings.CutPrefix(line, field); ok {
				m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err != nil {
					return true
				}
				mask |= m
			}
		}
	}
	return mask&(1<<(uint(sig)-1)) != 0
}
