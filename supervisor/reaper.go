// Package supervisor starts the supervised child, forwards signals to it,
// reaps every zombie it is responsible for and turns the child's end into an
// exit status. It is the PID-1 half of lifecycled, in the manner of tini:
// each duty is one short function and a single loop owns all waiting.
package supervisor

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Reaper is the only caller of wait4 in the process. Having one owner of all
// waiting is what keeps the main child's status from being stolen: a second
// waiter (os/exec's cmd.Wait racing a wait4(-1) loop) loses statuses under
// load, as seen in several public Go inits.
//
// Children are started through the Reaper (see Start) so that the fork and the
// registration of the pid happen under the same lock the reaping loop takes:
// a child that exits at once cannot be reaped before it is known.
type Reaper struct {
	logger *zap.Logger
	// onOrphan is called once for every reaped process that is not a
	// registered child (a zombie lifecycled adopted).
	onOrphan func()

	mu       sync.Mutex
	children map[int]*Child
	// groups are process groups whose leader has exited but which may still
	// have members; they are checked after every reaping pass.
	groups map[*Child]struct{}
}

// NewReaper returns a Reaper that logs with logger and calls onOrphan for
// every adopted zombie it reaps (nil is allowed).
func NewReaper(logger *zap.Logger, onOrphan func()) *Reaper {
	if onOrphan == nil {
		onOrphan = func() {}
	}
	return &Reaper{
		logger:   logger,
		onOrphan: onOrphan,
		children: make(map[int]*Child),
		groups:   make(map[*Child]struct{}),
	}
}

// BecomeSubreaper makes this process the reaper of its orphaned descendants
// when it is not PID 1, so that grandchildren that outlive the child are
// reaped here rather than by the host's init. As PID 1 it is a no-op: PID 1
// already inherits every orphan in the namespace.
func BecomeSubreaper() error {
	if os.Getpid() == 1 {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return &os.SyscallError{Syscall: "prctl(PR_SET_CHILD_SUBREAPER)", Err: err}
	}
	return nil
}

// Run reaps on every SIGCHLD until ctx is done. SIGCHLD notifications merge
// (one delivery may stand for many exits), so every wake-up reaps until no
// zombie is left. While an exited child's process group still has members,
// a 20 ms tick also checks it: members that are not our children send no
// SIGCHLD when they go. Otherwise Run sleeps: an idle init must not wake up.
func (r *Reaper) Run(ctx context.Context) error {
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	defer signal.Stop(sigchld)

	tick := time.NewTicker(groupPoll)
	defer tick.Stop()
	r.reapZombies() // anything that exited before Notify took effect
	for {
		var tickC <-chan time.Time
		if r.groupsPending() {
			tickC = tick.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sigchld:
			r.reapZombies()
		case <-tickC:
			r.reapZombies()
		}
	}
}

// groupPoll is how often the process groups of exited children are checked
// for remaining members.
const groupPoll = 20 * time.Millisecond

func (r *Reaper) groupsPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.groups) > 0
}

// reapZombies collects every exited child with WNOHANG, hands the main
// children their statuses and counts the rest as reaped orphans.
func (r *Reaper) reapZombies() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no children at all; 0: none exited
			break
		}
		if ws.Stopped() || ws.Continued() {
			continue
		}
		if c, ok := r.children[pid]; ok {
			delete(r.children, pid)
			alone := !groupAlive(c.pgid)
			if !alone {
				r.groups[c] = struct{}{}
			}
			c.setExited(ws, alone)
			continue
		}
		r.onOrphan()
		r.logger.Debug("reaped orphan", zap.Int("pid", pid), zap.Int("exit_code", exitCode(ws)))
	}
	r.checkGroups()
}

// checkGroups marks as gone every exited child whose process group has no
// member left. Must be called with r.mu held.
func (r *Reaper) checkGroups() {
	for c := range r.groups {
		if !groupAlive(c.pgid) {
			delete(r.groups, c)
			c.setGone()
		}
	}
}

// groupAlive reports whether any process (zombies included) is left in the
// process group pgid.
func groupAlive(pgid int) bool {
	err := unix.Kill(-pgid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
