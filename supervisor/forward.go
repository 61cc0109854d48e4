package supervisor

import (
	"context"
	"sync"
	"syscall"
	"time"
)

// Forwarder passes signals on to the child. Signals that arrive before the
// child exists are remembered in order and delivered when it starts: a
// SIGHUP sent while dependencies are still being waited for is neither lost
// nor fatal.
type Forwarder struct {
	remap     SignalMap
	onForward func(sig syscall.Signal)

	mu      sync.Mutex
	child   *Child
	pending []syscall.Signal
}

// NewForwarder returns a Forwarder that rewrites signals through remap and
// calls onForward (may be nil) for every signal delivered.
func NewForwarder(remap SignalMap, onForward func(sig syscall.Signal)) *Forwarder {
	if onForward == nil {
		onForward = func(syscall.Signal) {}
	}
	return &Forwarder{remap: remap, onForward: onForward}
}

// Forward delivers sig to the child, or keeps it for when the child starts.
func (f *Forwarder) Forward(sig syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.child == nil {
		f.pending = append(f.pending, sig)
		return nil
	}
	return f.send(sig)
}

// Attach sets the child and delivers the signals kept so far.
func (f *Forwarder) Attach(c *Child) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.child = c
	var first error
	for _, sig := range f.pending {
		if err := f.send(sig); err != nil && first == nil {
			first = err
		}
	}
	f.pending = nil
	return first
}

func (f *Forwarder) send(sig syscall.Signal) error {
	to := f.remap.Map(sig)
	f.onForward(to)
	return f.child.Signal(to)
}

// Terminate stops what is left of the child's process group: sig to the
// group (or the child alone in single-child mode), SIGKILL to the group once
// grace has passed, and it returns as soon as the group is gone. The grace
// period is a ceiling, never a sleep. It reports whether SIGKILL was needed.
//
// In single-child mode the rest of the group gets sig once the child has
// exited, as it does when the child exits by itself: the group mates are
// then told to stop, not left to SIGKILL at the end of the grace period.
func (c *Child) Terminate(ctx context.Context, sig syscall.Signal, grace time.Duration) (killed bool) {
	select {
	case <-c.gone:
		return false
	default:
	}
	var childExited <-chan struct{} // set while the group mates are still to be told
	select {
	case <-c.exited:
		// Whatever is left are the child's group mates: tell them all,
		// whatever the forwarding mode.
		_ = c.SignalGroup(sig)
	default:
		_ = c.Signal(sig)
		if c.single {
			childExited = c.exited
		}
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
wait:
	for {
		select {
		case <-c.gone:
			return false
		case <-childExited:
			_ = c.SignalGroup(sig)
			childExited = nil
		case <-ctx.Done():
			break wait
		case <-timer.C:
			break wait
		}
	}
	_ = c.Kill()
	select {
	case <-c.gone:
	case <-ctx.Done():
	}
	return true
}
