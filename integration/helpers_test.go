// Package integration tests the built lifecycled binary from the outside:
// real processes, real PID namespaces (unshare), real signals, real
// terminals. TestMain builds the binary once; the helpers in this file start
// it as a plain process or as PID 1, wait for files and processes, and clean
// up every process a test started.
//
// Helpers that may run on goroutines other than the test's report with
// t.Errorf or return errors; only the test goroutine calls require.
package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/proctest"
)

// binDir holds the binaries TestMain built.
var binDir string

// raceEnabled is set when the tests run with -race (race_test.go); the
// binary under test is then built with the race detector too.
var raceEnabled bool

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lifecycled-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	// With -race the binary under test is built with the race detector
	// too: a data race in lifecycled then fails the test that hit it (see
	// proc.wait) instead of passing unnoticed.
	var race []string
	if raceEnabled {
		race = []string{"-race"}
	}
	for _, b := range []struct {
		name, pkg string
		flags     []string
	}{
		{"lifecycled", "./cmd/lifecycled", race},
		{"sigrecorder", "./integration/testdata/sigrecorder", nil},
	} {
		args := append([]string{"build", "-o", filepath.Join(dir, b.name)}, b.flags...)
		cmd := exec.Command("go", append(args, b.pkg)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: go build %s: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}

// moduleRoot is the directory of the go.mod this package belongs to.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// lifecycledBin is the path of the binary under test.
func lifecycledBin(t testing.TB) string {
	t.Helper()
	if binDir == "" {
		t.Fatal("lifecycled was not built (TestMain did not run)")
	}
	return filepath.Join(binDir, "lifecycled")
}

// recorder returns the argv that runs testdata/sigrecorder recording into
// dir.
func recorder(t testing.TB, dir string) []string {
	t.Helper()
	return append(recorderCmd(t), dir)
}

// recorderCmd is recorder's argv without the directory. The Go runtime's
// own preemption SIGURGs are turned off so that any SIGURG it records came
// from outside.
func recorderCmd(t testing.TB) []string {
	t.Helper()
	lifecycledBin(t) // same precondition
	return []string{"env", "GODEBUG=asyncpreemptoff=1", filepath.Join(binDir, "sigrecorder")}
}

// mode is how a test starts lifecycled.
type mode int

const (
	// plain: a process of the host's PID namespace; lifecycled makes
	// itself a child subreaper.
	plain mode = iota
	// pid1: PID 1 of a fresh PID namespace with its own /proc.
	pid1
)

func (m mode) String() string {
	if m == pid1 {
		return "pid1"
	}
	return "plain"
}

// modes is every mode, for table tests.
var modes = []mode{plain, pid1}

// forEachMode runs f as one subtest per mode.
func forEachMode(t *testing.T, f func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) { f(t, m) })
	}
}

// testContext is a context that ends after d or with the test.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// options say how start runs lifecycled. The zero value is a plain process
// with no stdin, in a temporary working directory, output captured.
type options struct {
	mode mode
	// env is added to the test's environment (from which every
	// LIFECYCLED_* variable is removed first).
	env []string
	// stdin, stdout, stderr replace /dev/null and the captured files.
	stdin, stdout, stderr *os.File
	// tty, if set, is the terminal lifecycled runs on: its stdin, stdout
	// and stderr, and the controlling terminal of its new session.
	tty *os.File
	// dir is the working directory (default: a new temporary directory).
	dir string
}

// result is how a lifecycled run ended.
type result struct {
	code    int    // exit code; -1 if killed by a signal or timed out
	signal  string // the signal that killed it, if any
	stdout  string // captured stdout (empty if options.stdout was given)
	stderr  string // captured stderr (empty if options.stderr was given)
	elapsed time.Duration
}

// proc is a started lifecycled (in pid1 mode: the unshare around it).
type proc struct {
	t       testing.TB
	mode    mode
	cmd     *exec.Cmd
	started time.Time
	outFile *os.File // captured stdout, or nil
	errFile *os.File // captured stderr, or nil

	done  chan struct{} // closed when cmd.Wait returned
	state *os.ProcessState
	ended time.Time

	pidOnce sync.Once
	pid     int // lifecycled's pid in the host's namespace
}

// start starts `lifecycled args...` as o says. The process gets a session of
// its own, so that cleanup can find and SIGKILL every process it left
// behind, even orphans. start reports failure with t.Errorf (it may be
// called from any goroutine) and then returns nil.
func start(t testing.TB, o options, args ...string) *proc {
	t.Helper()
	bin := lifecycledBin(t)
	tmp := t.TempDir()
	argv := append([]string{bin}, args...)
	if o.mode == pid1 {
		// --kill-child: if unshare dies, so does the namespace.
		argv = append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = o.dir
	if cmd.Dir == "" {
		cmd.Dir = tmp
	}
	cmd.Env = testEnv(o.env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	p := &proc{t: t, mode: o.mode, cmd: cmd, done: make(chan struct{})}

	// Only *os.File values are handed over, so that exec.Cmd copies
	// nothing and Wait never waits for an orphan holding a pipe open.
	if o.tty != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = o.tty, o.tty, o.tty
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0 // the child's stdin
	} else {
		var err error
		if o.stdin != nil {
			cmd.Stdin = o.stdin
		}
		if o.stdout != nil {
			cmd.Stdout = o.stdout
		} else if p.outFile, err = os.CreateTemp(tmp, "stdout"); err == nil {
			cmd.Stdout = p.outFile
		}
		if o.stderr != nil {
			cmd.Stderr = o.stderr
		} else if err == nil {
			if p.errFile, err = os.CreateTemp(tmp, "stderr"); err == nil {
				cmd.Stderr = p.errFile
			}
		}
		if err != nil {
			t.Errorf("start lifecycled: %v", err)
			return nil
		}
	}

	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Errorf("start %s: %v", strings.Join(argv, " "), err)
		return nil
	}
	go func() {
		_ = cmd.Wait()
		p.state, p.ended = cmd.ProcessState, time.Now()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// testEnv is the test's environment without LIFECYCLED_* variables, plus
// extra. A race-enabled binary would sleep a second before exiting 0
// (the race detector's atexit_sleep_ms); GORACE turns that off.
func testEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIFECYCLED_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	if raceEnabled {
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return append(env, extra...)
}

// wait waits for lifecycled to exit and returns how it ended. If ctx ends
// first, it kills everything the run started, reports an error and returns
// code -1.
func (p *proc) wait(ctx context.Context) result {
	p.t.Helper()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.t.Errorf("lifecycled %v did not exit in time: %v", p.cmd.Args, ctx.Err())
		p.kill()
	}
	res := result{code: -1, elapsed: p.ended.Sub(p.started)}
	if p.state == nil { // not even reaped after SIGKILL: kill reported it
		return res
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited():
			res.code = ws.ExitStatus()
		case ws.Signaled():
			res.signal = ws.Signal().String()
		}
	}
	res.stdout, res.stderr = readAll(p.outFile), readAll(p.errFile)
	if strings.Contains(res.stderr, "WARNING: DATA RACE") {
		p.t.Errorf("data race in lifecycled %v:\n%s", p.cmd.Args, res.stderr)
	}
	return res
}

func readAll(f *os.File) string {
	if f == nil {
		return ""
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// kill SIGKILLs every process left in the run's session (lifecycled,
// its children, orphans that went to the host's init) and waits for
// lifecycled itself. Registered as cleanup by start.
func (p *proc) kill() {
	killSession(p.cmd.Process.Pid)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("lifecycled %v: not reaped after SIGKILL", p.cmd.Args)
	}
	for _, f := range []*os.File{p.outFile, p.errFile} {
		if f != nil {
			_ = f.Close()
		}
	}
}

// killSession SIGKILLs every process of session sid until none is left
// (for at most 10 s: a process may fork while it is being killed).
func killSession(sid int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		alive := 0
		for _, s := range sessionProcs(sid) {
			if s.state != 'Z' { // a zombie goes once its parent (killed too) is gone
				alive++
				_ = syscall.Kill(s.pid, syscall.SIGKILL)
			}
		}
		if alive == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond) // let them die before looking again
	}
}

// lifecycledPid is lifecycled's pid in the host's namespace: the process
// itself, or in pid1 mode the child of unshare.
func (p *proc) lifecycledPid(ctx context.Context) (int, error) {
	if p.mode != pid1 {
		return p.cmd.Process.Pid, nil
	}
	var err error
	p.pidOnce.Do(func() {
		u := p.cmd.Process.Pid
		children := fmt.Sprintf("/proc/%d/task/%d/children", u, u)
		err = poll(ctx, func() bool {
			b, _ := os.ReadFile(children)
			if f := strings.Fields(string(b)); len(f) > 0 {
				p.pid, _ = strconv.Atoi(f[0])
			}
			return p.pid > 0
		})
	})
	if p.pid == 0 {
		return 0, fmt.Errorf("pid of lifecycled under unshare %d: %w", p.cmd.Process.Pid, err)
	}
	return p.pid, nil
}

// signal sends sig to lifecycled (in pid1 mode: to the namespace's PID 1,
// from outside the namespace).
func (p *proc) signal(ctx context.Context, sig syscall.Signal) error {
	pid, err := p.lifecycledPid(ctx)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("kill %d %v: %w", pid, sig, err)
	}
	return nil
}

// hostPid turns the pid a process of the run sees for itself ($$) into its
// pid in the host's namespace, where the test can signal it.
func (p *proc) hostPid(ctx context.Context, pid int) (int, error) {
	if p.mode != pid1 {
		return pid, nil
	}
	lpid, err := p.lifecycledPid(ctx)
	if err != nil {
		return 0, err
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", lpid))
	if err != nil {
		return 0, fmt.Errorf("pid namespace of lifecycled: %w", err)
	}
	host := 0
	err = poll(ctx, func() bool {
		for _, s := range allProcs() {
			// NSpid: the pid in each namespace, the host's first.
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
			for _, l := range strings.Split(string(b), "\n") {
				f := strings.Fields(strings.TrimPrefix(l, "NSpid:"))
				if !strings.HasPrefix(l, "NSpid:") || len(f) < 2 || f[len(f)-1] != strconv.Itoa(pid) {
					continue
				}
				if their, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", s.pid)); their == ns {
					host = s.pid
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		return 0, fmt.Errorf("host pid of pid %d in the namespace: %w", pid, err)
	}
	return host, nil
}

// run runs `lifecycled args...` as a plain process to the end.
func run(t testing.TB, ctx context.Context, args ...string) result {
	t.Helper()
	return runMode(t, ctx, plain, args...)
}

// runMode runs `lifecycled args...` in mode m to the end.
func runMode(t testing.TB, ctx context.Context, m mode, args ...string) result {
	t.Helper()
	p := start(t, options{mode: m}, args...)
	if p == nil {
		return result{code: -1}
	}
	return p.wait(ctx)
}

// stopWhenReady starts `lifecycled args...` as o says, waits for the child
// to write o.dir/ready, sends SIGTERM and waits for the end: how it ended,
// and how long after SIGTERM.
func stopWhenReady(t testing.TB, ctx context.Context, o options, args ...string) (result, time.Duration) {
	t.Helper()
	p := start(t, o, args...)
	require.NotNil(t, p)
	require.NoError(t, waitFile(ctx, filepath.Join(o.dir, "ready")))
	r, sent := p.terminate(ctx)
	return r, p.ended.Sub(sent)
}

// terminate sends SIGTERM and waits for the end: how it ended, and when
// SIGTERM was sent.
func (p *proc) terminate(ctx context.Context) (result, time.Time) {
	p.t.Helper()
	sent := time.Now()
	require.NoError(p.t, p.signal(ctx, syscall.SIGTERM))
	return p.wait(ctx), sent
}

// poll calls cond every few milliseconds until it is true or ctx ends.
func poll(ctx context.Context, cond func() bool) error {
	return proctest.Poll(ctx, 5*time.Millisecond, cond)
}

// waitFile waits until path exists.
func waitFile(ctx context.Context, path string) error {
	err := poll(ctx, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s: %w", path, err)
	}
	return nil
}

// readPid reads a decimal pid from the file at path, waiting for it to be
// there and complete (written by `echo $$ > path.tmp && mv path.tmp path`
// or similar).
func readPid(ctx context.Context, path string) (int, error) {
	if err := waitFile(ctx, path); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// procStat is the part of /proc/PID/stat the tests look at.
type procStat struct {
	pid     int
	comm    string
	state   byte // R S D Z T ...
	ppid    int
	pgrp    int
	session int
	tpgid   int // foreground process group of the controlling terminal
}

// readStat parses /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (procStat, error) {
	// comm may hold spaces and parentheses: it ends at the last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("bad stat %q", b)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 6 {
		return procStat{}, fmt.Errorf("bad stat %q", b)
	}
	s := procStat{comm: string(b[open+1 : end]), state: f[0][0]}
	s.pid, _ = strconv.Atoi(strings.TrimSpace(string(b[:open])))
	nums := []*int{&s.ppid, &s.pgrp, &s.session, nil, &s.tpgid}
	for i, p := range nums {
		if p == nil {
			continue
		}
		var err error
		if *p, err = strconv.Atoi(f[i+1]); err != nil {
			return procStat{}, fmt.Errorf("bad stat %q: %w", b, err)
		}
	}
	return s, nil
}

// allProcs is every process the host's /proc shows.
func allProcs() []procStat { return procsWhere(func(procStat) bool { return true }) }

// sessionProcs is every process in session sid.
func sessionProcs(sid int) []procStat {
	return procsWhere(func(s procStat) bool { return s.session == sid })
}

// childrenOf is every process whose parent is ppid, zombies included.
func childrenOf(ppid int) []procStat {
	return procsWhere(func(s procStat) bool { return s.ppid == ppid })
}

// procsWhere is every process the host's /proc shows that keep keeps.
func procsWhere(keep func(procStat) bool) []procStat {
	ents, _ := os.ReadDir("/proc")
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readStat(pid); err == nil && keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// gone reports whether no process pid exists any more (a zombie still
// exists).
func gone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}

// readSignals returns the signal numbers sigrecorder recorded in dir, in
// order.
func readSignals(dir string) []int {
	b, _ := os.ReadFile(filepath.Join(dir, "signals"))
	var out []int
	for _, l := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(l)
		out = append(out, n)
	}
	return out
}

// waitSignals waits until sigrecorder recorded at least n signals in dir
// and returns them.
func waitSignals(ctx context.Context, dir string, n int) ([]int, error) {
	var got []int
	err := poll(ctx, func() bool {
		got = readSignals(dir)
		return len(got) >= n
	})
	if err != nil {
		return got, fmt.Errorf("wait for %d signals in %s (have %v): %w", n, dir, got, err)
	}
	return got, nil
}

// lines splits s into its lines, without the final empty one.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// parallel runs f(i) for i in [0, n) with at most limit running at once.
func parallel(n, limit int, f func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// touch creates an empty file at path (a go-ahead for a waiting child).
func touch(path string) error { return os.WriteFile(path, nil, 0o644) }
