package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// wrapper is one init under test and how it is invoked.
type wrapper struct {
	name string
	path string
	// argv is the command line that supervises cmd outside a PID namespace.
	argv func(path string, cmd ...string) []string
	// pid1Argv is the command line that supervises cmd as PID 1 of a fresh
	// PID namespace.
	pid1Argv func(path string, cmd ...string) []string
	// subject marks lifecycled: the wrapper the verdicts are about.
	subject bool
	// reference marks tini: every ratio is against it.
	reference bool
	// floor marks go-floor, this binary's minimal Go init: not a product,
	// the cost any Go wrapper pays, shown to tell Go's share from
	// lifecycled's own.
	floor bool
}

func (w *wrapper) command(cmd ...string) []string     { return w.argv(w.path, cmd...) }
func (w *wrapper) pid1Command(cmd ...string) []string { return w.pid1Argv(w.path, cmd...) }

// usage is the invocation shown in the report, with cmd as a placeholder.
func (w *wrapper) usage(cmd string) string {
	return w.short(w.command(cmd))
}

func (w *wrapper) pid1Usage(cmd string) string {
	return w.short(w.pid1Command(cmd))
}

// short joins argv for the report; go-floor's temporary path and signal
// list would only hide what matters.
func (w *wrapper) short(argv []string) string {
	if w.floor {
		for i, a := range argv {
			if a == "--" {
				argv = append([]string{"gofloor", "-signals", "…"}, argv[i:]...)
				break
			}
		}
	}
	return strings.Join(argv, " ")
}

// dashDash puts "--" (and extra flags) between the wrapper and the command.
func dashDash(flags ...string) func(string, ...string) []string {
	return func(path string, cmd ...string) []string {
		argv := append([]string{path}, flags...)
		argv = append(argv, "--")
		return append(argv, cmd...)
	}
}

// direct puts the command right after the wrapper, as dumb-init's README does.
func direct(path string, cmd ...string) []string {
	return append([]string{path}, cmd...)
}

type peerPaths struct {
	tini, tiniStatic, dumbInit, catatonit string
	goFloor                               bool
}

// newWrappers lists lifecycled and every peer that is installed. The
// invocations are each project's documented way to wrap a command:
//   - tini needs -s outside a PID namespace, or it cannot reap orphans (it
//     warns and does not become a subreaper); as PID 1 it needs nothing.
//   - dumb-init takes the command right away; by default it forwards signals
//     to the child's whole session (setsid mode), as lifecycled does to the
//     child's process group.
//   - catatonit makes itself a subreaper by itself when it is not PID 1;
//     -P would be its pause mode (run no command at all), so it takes no
//     flag.
//
// go-floor, last, is a minimal Go init (testdata/gofloor) built at run time
// into tmp.
func newWrappers(bin, tmp string, peers peerPaths) ([]*wrapper, []string, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, nil, err
	}
	if err := checkExecutable(abs); err != nil {
		return nil, nil, fmt.Errorf("lifecycled binary %s: %w (run `make build` first)", bin, err)
	}
	ws := []*wrapper{{name: "lifecycled", path: abs, argv: dashDash(), pid1Argv: dashDash(), subject: true}}
	var skipped []string
	for _, p := range []*wrapper{
		{name: "tini", path: peers.tini, argv: dashDash("-s"), pid1Argv: dashDash(), reference: true},
		{name: "tini-static", path: peers.tiniStatic, argv: dashDash("-s"), pid1Argv: dashDash()},
		{name: "dumb-init", path: peers.dumbInit, argv: direct, pid1Argv: direct},
		{name: "catatonit", path: peers.catatonit, argv: dashDash(), pid1Argv: dashDash()},
	} {
		if p.path == "" {
			continue
		}
		if err := checkExecutable(p.path); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (%v)", p.name, err))
			continue
		}
		ws = append(ws, p)
	}
	if peers.goFloor {
		path, err := buildGoFloor(tmp)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("go-floor (%v)", err))
		} else {
			ws = append(ws, &wrapper{name: "go-floor", path: path, argv: goFloorArgv, pid1Argv: goFloorArgv, floor: true})
		}
	}
	return ws, skipped, nil
}

func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("not an executable file")
	}
	return nil
}

// bench is what every section shares: the wrappers, this binary (the
// helpers), settings and the progress log.
type bench struct {
	set      settings
	wrappers []*wrapper
	skipped  []string
	self     string
	tmp      string
	env      []string
	devnull  *os.File
	log      io.Writer
}

func newBench(set settings, bin string, peers peerPaths, log io.Writer) (*bench, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for the helpers: %w", err)
	}
	tmp, err := os.MkdirTemp("", "lifecycled-bench-")
	if err != nil {
		return nil, err
	}
	ws, skipped, err := newWrappers(bin, tmp, peers)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	return &bench{set: set, wrappers: ws, skipped: skipped, self: self, tmp: tmp, env: cleanEnv(), devnull: devnull, log: log}, nil
}

func (b *bench) close() {
	_ = b.devnull.Close()
	_ = os.RemoveAll(b.tmp)
}

func (b *bench) progress(format string, a ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", a...)
}

// subject returns lifecycled.
func (b *bench) subject() *wrapper {
	for _, w := range b.wrappers {
		if w.subject {
			return w
		}
	}
	return nil
}

// floor returns go-floor, or nil if it was not built.
func (b *bench) floor() *wrapper {
	for _, w := range b.wrappers {
		if w.floor {
			return w
		}
	}
	return nil
}

// reference returns tini, or nil if it is not installed.
func (b *bench) reference() *wrapper {
	for _, w := range b.wrappers {
		if w.reference {
			return w
		}
	}
	return nil
}

// helper is the command line of one of this binary's helper modes.
func (b *bench) helper(mode string, args ...string) []string {
	return append([]string{b.self, "helper", mode}, args...)
}

// cleanEnv is this process's environment without lifecycled's own
// variables, so that a LIFECYCLED_* setting of the user's shell cannot change
// what is measured.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LIFECYCLED_") || strings.HasPrefix(kv, "GODEBUG=") || strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMAXPROCS=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// spawn starts argv with the given stdin, stdout and stderr (nil: /dev/null)
// and returns its pid. It uses ForkExec directly rather than os/exec: fewer
// allocations and no helper goroutines in the timed path.
func (b *bench) spawn(argv []string, stdin, stdout, stderr *os.File, setpgid bool) (int, error) {
	path := argv[0]
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return 0, err
		}
		path = p
	}
	fd := func(f *os.File) uintptr {
		if f == nil {
			return b.devnull.Fd()
		}
		return f.Fd()
	}
	attr := &syscall.ProcAttr{
		Env:   b.env,
		Files: []uintptr{fd(stdin), fd(stdout), fd(stderr)},
		Sys:   &syscall.SysProcAttr{Setpgid: setpgid},
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", strings.Join(argv, " "), err)
	}
	return pid, nil
}

// wait reaps pid and returns its wait status.
func wait(pid int) (unix.WaitStatus, error) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return ws, err
	}
}

// waitTimeout reaps pid; after timeout it sends SIGKILL to pid (and to its
// process group if it leads one) and reports that it had to.
func waitTimeout(pid int, timeout time.Duration) (ws unix.WaitStatus, killed bool, err error) {
	done := make(chan struct{})
	go func() {
		ws, err = wait(pid)
		close(done)
	}()
	select {
	case <-done:
		return ws, false, err
	case <-time.After(timeout):
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	<-done
	return ws, true, err
}

// stop ends a wrapper started by a section: SIGTERM (which every wrapper
// forwards to its child), then SIGKILL to it and its process group after
// grace.
func stop(pid int, grace time.Duration) {
	_ = unix.Kill(pid, unix.SIGTERM)
	if _, killed, _ := waitTimeout(pid, grace); killed {
		_ = unix.Kill(-pid, unix.SIGKILL)
	}
}

// monoNow is CLOCK_MONOTONIC in nanoseconds: the one clock this process and
// its helpers share.
func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func describeStatus(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return fmt.Sprintf("killed by %s", unix.SignalName(ws.Signal()))
	}
	return fmt.Sprintf("exit code %d", ws.ExitStatus())
}
