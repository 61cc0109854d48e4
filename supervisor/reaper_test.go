package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
)

// These tests start real processes. A Reaper waits for every child of the
// test process (wait4(-1)), so they do not run in parallel: two reapers
// would take each other's statuses.

// startReaper runs a Reaper until the test ends and returns it with the
// orphans it reaped. The test process becomes a subreaper first, as
// lifecycled does: otherwise the killed members of a child's group would
// be zombies of the host's init until it gets round to reaping them, and
// the group would not be gone before then.
func startReaper(t *testing.T) (*Reaper, *orphanLog) {
	t.Helper()
	require.NoError(t, BecomeSubreaper())
	core, logs := observer.New(zap.DebugLevel)
	orphans := &orphanLog{logs: logs}
	r := NewReaper(zap.New(core), func() { orphans.n.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r, orphans
}

// orphanLog is what a test's reaper reaped as orphans: every call of
// onOrphan, and the pid of each from the reaper's own "reaped orphan" line.
// A test asserts on the pids of its own processes: the test process is a
// subreaper, and a process an earlier test left behind (a killed group
// member reparented here after that test's reaper stopped) is reaped, and
// counted, by whichever reaper runs next.
type orphanLog struct {
	n    atomic.Int64
	logs *observer.ObservedLogs
}

// pids returns the pid of every orphan reaped so far, once for each time
// it was reaped.
func (o *orphanLog) pids() []int {
	var out []int
	for _, e := range o.logs.FilterMessage("reaped orphan").All() {
		out = append(out, int(e.ContextMap()["pid"].(int64)))
	}
	return out
}

// startChild starts argv through r, killing its group when the test ends.
func startChild(t *testing.T, r *Reaper, spec Spec) *Child {
	t.Helper()
	c, err := r.Start(spec)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = unix.Kill(-c.Pid(), unix.SIGKILL)
		select {
		case <-c.Exited():
		case <-time.After(10 * time.Second):
			t.Errorf("child %d not reaped", c.Pid())
		}
	})
	return c
}

// within waits for ch to close, at most d.
func within(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		require.FailNow(t, what+" did not happen in time", "waited %v", d)
	}
}

// waitFile waits for path to exist, at most 10 s.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "file never appeared", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readLines reads path's lines (none if it does not exist).
func readLines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

func TestReaperExitStatus(t *testing.T) {
	r, orphans := startReaper(t)
	var pids []int
	tests := []struct {
		argv []string
		want int
	}{
		{[]string{"true"}, 0},
		{[]string{"sh", "-c", "exit 7"}, 7},
		{[]string{"sh", "-c", "exit 255"}, 255},
		{[]string{"sh", "-c", "kill -9 $$"}, 137},
		{[]string{"sh", "-c", "kill -USR1 $$"}, 138},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			c := startChild(t, r, Spec{Argv: tt.argv})
			pids = append(pids, c.Pid())
			within(t, c.Exited(), 10*time.Second, "exit")
			within(t, c.Done(), 10*time.Second, "group gone")
			assert.Equal(t, tt.want, ExitCode(c.Status()))
		})
	}
	for _, pid := range orphans.pids() {
		assert.NotContains(t, pids, pid, "the children themselves are no orphans")
	}
}

// TestReaperManyQuickChildren: children that exit at once, many at a time,
// each get their own status: registration happens before the reaper can
// see the exit.
func TestReaperManyQuickChildren(t *testing.T) {
	r, orphans := startReaper(t)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	pids := make(chan int, n)
	for i := range n {
		wg.Go(func() {
			code := i % 256
			c, err := r.Start(Spec{Argv: []string{"sh", "-c", "exit " + strconv.Itoa(code)}})
			if err != nil {
				errs <- err
				return
			}
			pids <- c.Pid()
			select {
			case <-c.Done():
			case <-time.After(30 * time.Second):
				errs <- fmt.Errorf("child %d (exit %d) not done", c.Pid(), code)
				return
			}
			if got := ExitCode(c.Status()); got != code {
				errs <- fmt.Errorf("child %d: exit code %d, want %d", c.Pid(), got, code)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	close(pids)
	orphaned := orphans.pids()
	for pid := range pids {
		assert.NotContains(t, orphaned, pid, "a child taken for an orphan")
	}
}

func TestReaperStartErrors(t *testing.T) {
	r, _ := startReaper(t)
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	require.NoError(t, os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644))
	badInterp := filepath.Join(dir, "bad-interpreter")
	require.NoError(t, os.WriteFile(badInterp, []byte("#!/nonexistent/sh\n"), 0o755))
	tests := []struct {
		name string
		argv []string
		code int
	}{
		{"missing in PATH", []string{"no-such-command-supervisor-test"}, 127},
		{"missing path", []string{"/nonexistent/dir/app"}, 127},
		{"missing interpreter", []string{badInterp}, 127},
		{"not executable", []string{notExec}, 126},
		{"directory", []string{dir}, 126},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := r.Start(Spec{Argv: tt.argv})
			require.Error(t, err)
			assert.Nil(t, c)
			var se *StartError
			require.True(t, errors.As(err, &se), "a *StartError: %v", err)
			assert.Equal(t, tt.code, se.Code)
			assert.Contains(t, err.Error(), tt.argv[0], "names the command")
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	_, err := r.Start(Spec{})
	assert.Error(t, err, "no command")
}

// TestReaperOrphans: as a subreaper, the process adopts the orphans of its
// children's children and the reaper reaps and counts each.
func TestReaperOrphans(t *testing.T) {
	r, orphans := startReaper(t)
	// Each setsid'd sleep leaves the child's group; the child exits at
	// once and its sleeps are orphaned to us. (setsid does not fork here:
	// a background job of a non-interactive shell leads no group, so $!
	// is the sleep's pid.)
	pidFile := filepath.Join(t.TempDir(), "pids")
	c := startChild(t, r, Spec{Argv: []string{"sh", "-c",
		`for i in 1 2 3 4 5; do setsid sleep 0.2 & echo $! >>"$0"; done; exit 0`, pidFile}})
	within(t, c.Done(), 10*time.Second, "child done")
	assert.Equal(t, 0, ExitCode(c.Status()))
	var want []int
	for _, f := range readLines(pidFile) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		want = append(want, pid)
	}
	require.Len(t, want, 5)
	mine := func() []int {
		var got []int
		for _, pid := range orphans.pids() {
			if slices.Contains(want, pid) {
				got = append(got, pid)
			}
		}
		return got
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(mine()) < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.ElementsMatch(t, want, mine(), "each orphan reaped once")
	assert.GreaterOrEqual(t, orphans.n.Load(), int64(5), "onOrphan called for each")
	assertNoZombies(t)
}

// assertNoZombies checks that no child of the test process is a zombie.
func assertNoZombies(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	me := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == me {
			assert.NotEqual(t, "Z", f[0], "zombie child %s: %s", e.Name(), s)
		}
	}
}

// TestChildDoneWaitsForGroup: Exited closes when the child exits, Done only
// once the last member of its process group is gone as well.
func TestChildDoneWaitsForGroup(t *testing.T) {
	r, _ := startReaper(t)
	start := time.Now()
	c := startChild(t, r, Spec{Argv: []string{"sh", "-c", "sleep 0.5 & exit 4"}})
	within(t, c.Exited(), 10*time.Second, "exit")
	select {
	case <-c.Done():
		t.Fatal("Done closed while the background sleep still runs")
	default:
	}
	within(t, c.Done(), 10*time.Second, "group gone")
	assert.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond)
	assert.Equal(t, 4, ExitCode(c.Status()))
}

// trapScript is a shell that records each signal of sigs it gets in
// DIR/NAME, one name a line, writes DIR/NAME.ready once its traps are set,
// and then loops; it exits 0 on TERM if exitOnTerm.
func trapScript(dir, name string, exitOnTerm bool, sigs ...string) string {
	var b strings.Builder
	for _, s := range sigs {
		fmt.Fprintf(&b, "trap 'echo %s >> %s/%s' %s; ", s, dir, name, s)
	}
	if exitOnTerm {
		fmt.Fprintf(&b, "trap 'echo TERM >> %s/%s; exit 0' TERM; ", dir, name)
	}
	fmt.Fprintf(&b, ": > %s/%s.ready; while :; do sleep 0.02; done", dir, name)
	return b.String()
}

// TestChildSignalGroupOrSingle: Signal reaches the whole process group, or
// with SingleChild the child alone.
func TestChildSignalGroupOrSingle(t *testing.T) {
	r, _ := startReaper(t)
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("single=%v", single), func(t *testing.T) {
			dir := t.TempDir()
			// The grandchild is a background job: same process group.
			script := fmt.Sprintf("sh -c %q & %s",
				trapScript(dir, "grandchild", false, "USR1", "USR2"), trapScript(dir, "child", false, "USR1"))
			c := startChild(t, r, Spec{Argv: []string{"sh", "-c", script}, SingleChild: single})
			waitFile(t, filepath.Join(dir, "child.ready"))
			waitFile(t, filepath.Join(dir, "grandchild.ready"))

			require.NoError(t, c.Signal(unix.SIGUSR1))
			waitLines(t, filepath.Join(dir, "child"), 1)
			// A group signal is queued to all members at once; a USR2
			// sent to the whole group afterwards is a marker behind it.
			require.NoError(t, c.signalGroup(unix.SIGUSR2))
			got := waitLines(t, filepath.Join(dir, "grandchild"), 1)
			if single {
				assert.Equal(t, []string{"USR2"}, got, "the grandchild must not get USR1")
			} else {
				assert.ElementsMatch(t, []string{"USR1", "USR2"}, waitLines(t, filepath.Join(dir, "grandchild"), 2))
			}
			assert.Equal(t, []string{"USR1"}, readLines(filepath.Join(dir, "child")))
		})
	}
}

// waitLines waits until path has at least n lines and returns them.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l := readLines(path); len(l) >= n {
			return l
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "lines never appeared", "%s: want %d, have %v", path, n, readLines(path))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTerminate(t *testing.T) {
	r, _ := startReaper(t)
	tests := []struct {
		name   string
		script string // writes ./ready when its traps are set
		single bool
		grace  time.Duration
		killed bool
		code   int
		min    time.Duration
		max    time.Duration
	}{
		{name: "exits on TERM", script: "touch ready; exec sleep 30",
			grace: 20 * time.Second, code: 143, max: 10 * time.Second},
		{name: "handles TERM", script: "trap 'exit 3' TERM; touch ready; while :; do sleep 0.02; done",
			grace: 20 * time.Second, code: 3, max: 10 * time.Second},
		{name: "ignores TERM", script: "trap '' TERM; touch ready; while :; do sleep 0.02; done",
			grace: 300 * time.Millisecond, killed: true, code: 137, min: 300 * time.Millisecond, max: 10 * time.Second},
		// Child and group mate stop on TERM; single-child sends it to
		// the child first and to the rest once the child is gone.
		{name: "single child, group mate stops on TERM", single: true,
			script: "sleep 30 & trap 'exit 5' TERM; touch ready; while :; do sleep 0.02; done",
			grace:  20 * time.Second, code: 5, max: 10 * time.Second},
		{name: "single child, group mate ignores TERM", single: true,
			script: "sh -c 'trap \"\" TERM; touch mate; exec sleep 30' & trap 'exit 5' TERM; while [ ! -e mate ]; do sleep 0.01; done; touch ready; while :; do sleep 0.02; done",
			grace:  300 * time.Millisecond, killed: true, code: 5, min: 300 * time.Millisecond, max: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := startChild(t, r, Spec{Argv: []string{"sh", "-c", "cd " + dir + "; " + tt.script}, SingleChild: tt.single})
			waitFile(t, filepath.Join(dir, "ready"))
			start := time.Now()
			killed := Terminate(c, unix.SIGTERM, tt.grace).Killed
			took := time.Since(start)
			assert.Equal(t, tt.killed, killed, "killed")
			within(t, c.Done(), time.Second, "Terminate returns once the group is gone")
			assert.Equal(t, tt.code, ExitCode(c.Status()))
			assert.GreaterOrEqual(t, took, tt.min)
			assert.Less(t, took, tt.max)
		})
	}
}

// TestTerminateLeftovers: after the child exited by itself, Terminate
// stops what is left of its group (the stop signal, then SIGKILL once the
// grace period is over).
func TestTerminateLeftovers(t *testing.T) {
	r, _ := startReaper(t)
	dir := t.TempDir()
	script := fmt.Sprintf("sh -c 'trap \"\" TERM; touch %s/ready; exec sleep 30' & while [ ! -e %s/ready ]; do sleep 0.01; done; exit 9", dir, dir)
	c := startChild(t, r, Spec{Argv: []string{"sh", "-c", script}})
	within(t, c.Exited(), 10*time.Second, "exit")
	start := time.Now()
	assert.True(t, Terminate(c, unix.SIGTERM, 200*time.Millisecond).Killed, "the leftover ignores TERM: SIGKILL")
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "after the grace period")
	within(t, c.Done(), 10*time.Second, "group gone")
	assert.Equal(t, 9, ExitCode(c.Status()), "the child's own status")
	// A gone group is never signalled again (its id may be reused).
	assert.NoError(t, c.Signal(unix.SIGTERM))
	assert.False(t, Terminate(c, unix.SIGTERM, time.Minute).Killed)
}

// TestForwarder: signals forwarded before the child exists are kept and
// delivered once it has started (after it set its handlers), rewritten by
// the map; later ones go at once; onForward sees what was sent.
func TestForwarder(t *testing.T) {
	r, _ := startReaper(t)
	var mu sync.Mutex
	var sent []syscall.Signal
	f := NewForwarder(SignalMap{unix.SIGUSR1: unix.SIGUSR2}, func(s syscall.Signal) {
		mu.Lock()
		sent = append(sent, s)
		mu.Unlock()
	})
	require.NoError(t, f.Forward(unix.SIGUSR1))
	require.NoError(t, f.Forward(unix.SIGHUP))
	mu.Lock()
	assert.Empty(t, sent, "nothing is sent before there is a child")
	mu.Unlock()

	dir := t.TempDir()
	// The child sets its traps only after a while, as a real program
	// does: the remembered signals must wait for them, not kill it.
	c := startChild(t, r, Spec{Argv: []string{"sh", "-c", "sleep 0.2; " + trapScript(dir, "child", true, "USR1", "USR2", "HUP")}})
	f.Attach(c)
	got := waitLines(t, filepath.Join(dir, "child"), 2)
	assert.ElementsMatch(t, []string{"USR2", "HUP"}, got, "USR1 arrives as USR2")

	require.NoError(t, f.Forward(unix.SIGUSR1))
	assert.Equal(t, "USR2", waitLines(t, filepath.Join(dir, "child"), 3)[2])
	require.NoError(t, f.Forward(unix.SIGTERM))
	within(t, c.Done(), 10*time.Second, "child done")
	assert.Equal(t, 0, ExitCode(c.Status()), "the child was alive to handle every signal")
	assert.Equal(t, []string{"USR2", "TERM"}, readLines(filepath.Join(dir, "child"))[2:])
	mu.Lock()
	assert.ElementsMatch(t, []syscall.Signal{unix.SIGUSR2, unix.SIGHUP, unix.SIGUSR2, unix.SIGTERM}, sent)
	mu.Unlock()
	// After the child is gone, forwarding is harmless.
	assert.NoError(t, f.Forward(unix.SIGHUP))
}

// TestForwarderRemember: a signal remembered after the child is attached
// (caught before the start, handled after it) waits for the child's
// handler like those kept before the start, and later ones queue behind
// it; Forward would have killed the child, which sets its traps late.
func TestForwarderRemember(t *testing.T) {
	r, _ := startReaper(t)
	f := NewForwarder(nil, nil)
	dir := t.TempDir()
	c := startChild(t, r, Spec{Argv: []string{"sh", "-c", "sleep 0.2; " + trapScript(dir, "child", true, "USR1", "HUP")}})
	f.Attach(c)
	f.Remember(unix.SIGUSR1)
	require.NoError(t, f.Forward(unix.SIGHUP), "queued behind the remembered one")
	// The shell runs traps pending together lowest signal first: no order.
	assert.ElementsMatch(t, []string{"USR1", "HUP"}, waitLines(t, filepath.Join(dir, "child"), 2))
	require.NoError(t, f.Forward(unix.SIGTERM))
	within(t, c.Done(), 10*time.Second, "child done")
	assert.Equal(t, 0, ExitCode(c.Status()), "the child was alive to handle every signal")
}

// TestTerminateBoundedAfterKill: a zombie in the child's group whose parent
// lives outside the group and does not reap it keeps the group from ever
// being gone. Terminate waits KillWait after SIGKILL, not for that parent,
// reports the group as lingering, and names the zombie.
func TestTerminateBoundedAfterKill(t *testing.T) {
	r, _ := startReaper(t)
	dir := t.TempDir()
	// The background job forks the zombie-to-be in the child's group,
	// leaves the group and sleeps without reaping it.
	script := "cd " + dir + `; perl -e '
		my $z = fork(); if ($z == 0) { exit 0 }
		setpgrp(0, 0);
		open(my $f, ">", "parent"); print $f "$$"; close($f);
		select(undef, undef, undef, 0.2);
		open($f, ">", "ready"); close($f);
		sleep 30' &
		exec sleep 30`
	c := startChild(t, r, Spec{Argv: []string{"sh", "-c", script}})
	waitFile(t, filepath.Join(dir, "ready"))
	b, err := os.ReadFile(filepath.Join(dir, "parent"))
	require.NoError(t, err)
	parent, err := strconv.Atoi(string(b))
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Kill(parent, unix.SIGKILL) })

	start := time.Now()
	res := Terminate(c, unix.SIGTERM, 300*time.Millisecond)
	took := time.Since(start)
	assert.True(t, res.Killed, "the zombie outlives the grace period")
	select {
	case <-c.Done():
		t.Error("the group is gone: the zombie should outlive SIGKILL")
	default:
	}
	assert.GreaterOrEqual(t, took, 300*time.Millisecond+KillWait)
	assert.Less(t, took, 300*time.Millisecond+KillWait+5*time.Second, "not the parent's 30 s")
	within(t, c.Exited(), time.Second, "the child itself is gone")
	assert.Equal(t, 143, ExitCode(c.FinalStatus()))
	left := c.LeftInGroup()
	require.Len(t, left, 1)
	assert.Contains(t, left[0], " Z (perl)")
}
