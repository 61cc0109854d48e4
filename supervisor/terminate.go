package supervisor

import (
	"syscall"
	"time"
)

// Process is what Terminate needs of a supervised process: *Child, or any
// stand-in a test builds around real processes.
type Process interface {
	// Signal sends the stop signal: to the child's process group, or to
	// the child alone in single-child mode while it runs.
	Signal(sig syscall.Signal) error
	// SignalRest sends sig, once the child has exited, to what is left of
	// its process group if Signal did not reach it (single-child mode);
	// otherwise it does nothing, so no one gets the stop signal twice.
	SignalRest(sig syscall.Signal) error
	// Kill sends SIGKILL to the child's whole process group.
	Kill() error
	// Exited is closed once the child itself has exited.
	Exited() <-chan struct{}
	// Done is closed once the child has exited and its process group is
	// gone.
	Done() <-chan struct{}
}

// KillWait bounds the wait for the process group to be gone after SIGKILL.
// A SIGKILLed process is gone within milliseconds, or within a second when
// the kernel has gigabytes of memory to free; one that is still there
// after that is either in uninterruptible sleep (a hung NFS server), which
// no signal ends, or a zombie whose parent lives outside the group and
// does not reap it, which no signal to the group ends either. Waiting
// longer would only make the grace period a lie: tini exits at once.
const KillWait = time.Second

// Termination says how Terminate ended.
type Termination struct {
	// SignalErr is the error of sending the stop signal, usually because
	// the child had just exited.
	SignalErr error
	// Killed is set when the grace period ran out and SIGKILL was sent;
	// KillErr is the error of sending it. The group may still be there
	// KillWait later: p.Done() says.
	Killed  bool
	KillErr error
	// Grace is the time from the stop signal to the group being gone or
	// to SIGKILL.
	Grace time.Duration
}

// Terminate is lifecycled's one kill escalation, for a child that exited
// by itself (what is left of its group) and for the stop sequence alike:
// sig to p, SIGKILL to the group once grace has passed, and it returns as
// soon as the group is gone. Every wait has a deadline: the grace period is
// a ceiling, never a sleep, and after SIGKILL Terminate waits at most
// KillWait. It takes no context: nothing cancels a stop once it has
// begun (an internal error asks for a stop, it does not cut one short), and
// its two deadlines already bound it.
//
// In single-child mode the rest of the group gets sig once the child has
// exited, as it does when the child exits by itself: the group mates are
// then told to stop, not left to SIGKILL at the end of the grace period.
func Terminate(p Process, sig syscall.Signal, grace time.Duration) Termination {
	return TerminateWith(p, sig, grace, nil)
}

// TerminateWith is Terminate that calls beforeKill, if not nil, once the
// grace period is over and just before SIGKILL: the stop sequence counts
// the connections SIGKILL is about to cut. It must return quickly.
func TerminateWith(p Process, sig syscall.Signal, grace time.Duration, beforeKill func()) Termination {
	var t Termination
	done := p.Done()
	select {
	case <-done:
		return t
	default:
	}
	start := time.Now()
	t.SignalErr = p.Signal(sig)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	exited := p.Exited()
wait:
	for {
		select {
		case <-done:
			t.Grace = time.Since(start)
			return t
		case <-exited:
			exited = nil
			_ = p.SignalRest(sig)
		case <-timer.C:
			break wait
		}
	}
	if beforeKill != nil {
		beforeKill()
	}
	t.Grace, t.Killed = time.Since(start), true
	t.KillErr = p.Kill()
	deadline := time.NewTimer(KillWait)
	defer deadline.Stop()
	select {
	case <-done:
	case <-deadline.C:
	}
	return t
}
