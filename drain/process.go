package drain

import "syscall"

// Process is what the stop sequence needs from the supervised child;
// *supervisor.Child is one. Keeping the interface this small lets the
// sequence be tested against any real process.
type Process interface {
	// Signal sends the stop signal. Whether it goes to the child's process
	// group or to the child alone (single-child mode) is the
	// implementation's choice.
	Signal(sig syscall.Signal) error
	// SignalRest sends sig, once the child has exited, to what is left of
	// its process group if Signal did not reach it (single-child mode);
	// otherwise it does nothing, so no one gets the stop signal twice.
	SignalRest(sig syscall.Signal) error
	// Kill sends SIGKILL to the child's whole process group.
	Kill() error
	// Exited is closed once the child itself has exited: the waits before
	// the stop signal end there, since there is no app left to drain.
	Exited() <-chan struct{}
	// Done is closed once the child has exited and its process group is
	// gone, so the sequence never ends while a grandchild still holds a
	// port or a file.
	Done() <-chan struct{}
}
