// Package sigset is the list of signals lifecycled catches, apart from the
// code that catches them, so that the earliest package of the binary
// (internal/earlysignal) and the supervisor share one list without the
// former importing the latter's heavy dependencies.
package sigset

import "syscall"

// Forwarded is every signal lifecycled catches and, in `lifecycled run`,
// passes on to the child. It is an explicit list on purpose: signal.Notify with no list
// would also deliver SIGURG, which the Go runtime sends itself for goroutine
// preemption, and forward a stream of bogus SIGURGs to the child. Not
// listed: SIGKILL and SIGSTOP (cannot be caught), SIGCHLD (the reaper's),
// SIGURG (the runtime's), and two that no Go program can catch: SIGPROF (the
// runtime keeps it for its profiler and never hands it to signal.Notify: it
// is dropped) and SIGRTMIN, signal 34 (reserved by the runtime for musl,
// go.dev/issue/39343: Notify ignores it and it keeps its default action, so
// it ends a lifecycled that is not PID 1 and is dropped by one that is). Nor
// the synchronous SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP and SIGSYS, which
// mean a crash of lifecycled itself, never a message for the child.
//
// Catching SIGTTIN, SIGTTOU and SIGTSTP also means lifecycled itself is
// never stopped by job control; the child, which gets them forwarded, is.
func Forwarded() []syscall.Signal {
	sigs := []syscall.Signal{
		syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGABRT, syscall.SIGUSR1, syscall.SIGUSR2,
		syscall.SIGPIPE, syscall.SIGALRM, syscall.SIGTERM, syscall.SIGSTKFLT, syscall.SIGCONT, syscall.SIGTSTP,
		syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGVTALRM,
		syscall.SIGWINCH, syscall.SIGIO, syscall.SIGPWR,
	}
	for s := rtMin + 1; s <= rtMax; s++ { // SIGRTMIN itself: see above
		sigs = append(sigs, syscall.Signal(s))
	}
	return sigs
}

// The real-time range as glibc programs see it (glibc keeps 32 and 33).
const (
	rtMin = 34
	rtMax = 64
)
