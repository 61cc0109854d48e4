package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Spec says what to run and how.
type Spec struct {
	// Argv is the command and its arguments; Argv[0] is looked up in PATH.
	Argv []string
	// Env is the child's environment; nil means lifecycled's own.
	Env []string
	// SingleChild sends forwarded signals to the child alone instead of its
	// process group.
	SingleChild bool
	// Stdin, Stdout and Stderr are handed to the child as they are: no pipe,
	// no copy, so output is byte-exact and a TTY stays a TTY. Nil means
	// lifecycled's own.
	Stdin, Stdout, Stderr *os.File
	// ParentDeathSignal is sent to the child by the kernel if lifecycled
	// dies (0: none). It matters when lifecycled is not PID 1: a SIGKILLed
	// PID 1 takes the whole namespace with it, a plain process does not.
	ParentDeathSignal syscall.Signal
}

// StartError is returned by Start when COMMAND cannot be run. Code is the
// contract's exit code for it: 127 not found, 126 not executable.
type StartError struct {
	Path string
	Code int
	Err  error
}

func (e *StartError) Error() string {
	what := "cannot execute"
	if e.Code == 127 {
		what = "command not found"
	}
	return fmt.Sprintf("%s: %s: %v", e.Path, what, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// Child is the supervised process. Its verbs are those of a child in
// consul-template: Signal, Kill, and channels that close when it exits and
// when its whole process group is gone.
type Child struct {
	pid    int
	pgid   int
	single bool
	tty    int // the terminal the child was given the foreground of, or -1

	mu     sync.Mutex
	status unix.WaitStatus
	exited chan struct{}
	gone   chan struct{}
}

// Start starts spec's command in a new process group and registers it with
// the reaper before the reaper can see it exit. When stdin is the terminal
// and lifecycled is in the foreground, the child's group takes the
// foreground, so job control inside it (bash -m, an editor) works.
func (r *Reaper) Start(spec Spec) (*Child, error) {
	if len(spec.Argv) == 0 {
		return nil, errors.New("no command given")
	}
	path, err := exec.LookPath(spec.Argv[0])
	if err != nil && !errors.Is(err, exec.ErrDot) {
		return nil, lookPathError(spec.Argv[0], err)
	}
	files := []*os.File{orStd(spec.Stdin, os.Stdin), orStd(spec.Stdout, os.Stdout), orStd(spec.Stderr, os.Stderr)}
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = f.Fd()
	}
	env := spec.Env
	if env == nil {
		env = os.Environ()
	}
	attr := &syscall.ProcAttr{
		Env:   env,
		Files: fds,
		Sys: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: spec.ParentDeathSignal,
		},
	}
	tty := -1
	if inForeground(int(fds[0])) {
		attr.Sys.Foreground = true
		attr.Sys.Ctty = int(fds[0])
		tty = int(fds[0])
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	// The parent-death signal fires when the forking *thread* ends
	// (go.dev/issue/27505). Locking the goroutine to its thread for the
	// fork and unlocking it afterwards keeps that thread alive as an
	// ordinary runtime thread.
	runtime.LockOSThread()
	pid, err := syscall.ForkExec(path, spec.Argv, attr)
	runtime.UnlockOSThread()
	runtime.KeepAlive(files)
	if err != nil {
		return nil, execError(path, err)
	}
	c := &Child{
		pid:    pid,
		pgid:   pid,
		single: spec.SingleChild,
		tty:    tty,
		exited: make(chan struct{}),
		gone:   make(chan struct{}),
	}
	r.children[pid] = c
	return c, nil
}

// Pid returns the child's process id (also its process group id).
func (c *Child) Pid() int { return c.pid }

// Signal sends sig to the child's process group, or to the child alone in
// single-child mode while it runs (once it has exited, what is left of its
// group is all there is to tell). After the group is gone it does nothing,
// so a recycled process group id is never signalled.
func (c *Child) Signal(sig syscall.Signal) error {
	if c.single {
		select {
		case <-c.exited:
		default:
			return c.signalChild(sig)
		}
	}
	return c.SignalGroup(sig)
}

// SignalRest tells what the child left in its process group, once it has
// exited, when Signal reached the child alone (single-child mode). In group
// mode they already had sig, and it does nothing.
func (c *Child) SignalRest(sig syscall.Signal) error {
	if !c.single {
		return nil
	}
	return c.SignalGroup(sig)
}

// SignalGroup sends sig to every process in the child's process group.
func (c *Child) SignalGroup(sig syscall.Signal) error {
	select {
	case <-c.gone:
		return nil
	default:
	}
	if err := unix.Kill(-c.pgid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal process group %d with %s: %w", c.pgid, SignalName(sig), err)
	}
	return nil
}

func (c *Child) signalChild(sig syscall.Signal) error {
	select {
	case <-c.exited:
		return nil // the pid may already belong to someone else
	default:
	}
	if err := unix.Kill(c.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal pid %d with %s: %w", c.pid, SignalName(sig), err)
	}
	return nil
}

// Kill sends SIGKILL to the child's whole process group.
func (c *Child) Kill() error { return c.SignalGroup(unix.SIGKILL) }

// ReturnTerminal gives the terminal's foreground back to lifecycled's own
// process group once the child is gone, if the child had taken it. An
// interactive shell takes its terminal back by itself, but a parent without
// job control (bash -c, a script) would otherwise be left in the background
// of a terminal whose foreground group no longer exists. SIGTTOU, which the
// kernel sends a background group that sets the foreground, is blocked on
// this thread for the call.
func (c *Child) ReturnTerminal() error {
	if c.tty < 0 {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var block, old unix.Sigset_t
	block.Val[0] = 1 << (uint(unix.SIGTTOU) - 1)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &block, &old); err != nil {
		return fmt.Errorf("block SIGTTOU: %w", err)
	}
	defer func() { _ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) }()
	if err := unix.IoctlSetPointerInt(c.tty, unix.TIOCSPGRP, unix.Getpgrp()); err != nil {
		return fmt.Errorf("give the terminal back to process group %d: %w", unix.Getpgrp(), err)
	}
	return nil
}

// Exited is closed once the child itself has exited and been reaped.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Done is closed once the child has exited and no process is left in its
// process group.
func (c *Child) Done() <-chan struct{} { return c.gone }

// Status returns the child's wait status; it is meaningful once Exited is
// closed.
func (c *Child) Status() unix.WaitStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// setExited records the child's status. gone says that no process is left
// in its group: Done is then closed before Exited, so that whoever sees
// Exited can tell at once, without waiting, whether group mates are left.
func (c *Child) setExited(ws unix.WaitStatus, gone bool) {
	c.mu.Lock()
	c.status = ws
	c.mu.Unlock()
	if gone {
		c.setGone()
	}
	close(c.exited)
}

func (c *Child) setGone() { close(c.gone) }

func orStd(f, std *os.File) *os.File {
	if f != nil {
		return f
	}
	return std
}

// inForeground reports whether fd is a terminal whose foreground process
// group is ours: only then may the child take the terminal over. Taking it
// from a background job would steal the user's shell prompt.
func inForeground(fd int) bool {
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil {
		return false // not a terminal, or no controlling terminal
	}
	return pgrp == unix.Getpgrp()
}

func lookPathError(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return &StartError{Path: name, Code: 126, Err: fs.ErrPermission}
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return &StartError{Path: name, Code: 127, Err: errors.Unwrap(err)}
	case errors.Is(err, syscall.EISDIR):
		return &StartError{Path: name, Code: 126, Err: syscall.EISDIR}
	default:
		return &StartError{Path: name, Code: 127, Err: err}
	}
}

func execError(path string, err error) error {
	code := 126
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
		code = 127 // e.g. a script whose interpreter does not exist
	}
	return &StartError{Path: path, Code: code, Err: err}
}

// FinalStatus is the child's wait status once Terminate has returned: its
// own, or, if it has still not exited (it did not die within KillWait of
// SIGKILL: uninterruptible sleep), that of a process killed by SIGKILL,
// which is how it will end.
func (c *Child) FinalStatus() unix.WaitStatus {
	select {
	case <-c.exited:
	case <-c.gone: // closed a moment before exited: see setExited
	default:
		return unix.WaitStatus(unix.SIGKILL) // signalled, no core
	}
	return c.Status()
}

// LeftInGroup describes the processes still in the child's process group,
// zombies included, as "PID STATE (COMM)", read from /proc: what kept the
// group from being gone.
func (c *Child) LeftInGroup() []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// comm may hold spaces and parentheses: it ends at the last ')'.
		open, end := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(b[end+1:])) // state ppid pgrp ...
		if len(f) < 3 || f[2] != strconv.Itoa(c.pgid) {
			continue
		}
		out = append(out, e.Name()+" "+f[0]+" "+string(b[open:end+1]))
	}
	return out
}
