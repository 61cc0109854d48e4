package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// helperMain runs one of the helper modes the sections start under the
// wrappers: `bench helper receiver`, `bench helper reap -n N`,
// `bench helper stamp FILE` or `bench helper http ADDR`.
func helperMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "bench helper: want receiver, reap, stamp or http")
		return 2
	}
	switch args[0] {
	case "receiver":
		return receiverMain()
	case "reap":
		return reapMain(args[1:])
	case "stamp":
		return stampMain(args[1:])
	case "http":
		return httpMain(args[1:])
	default:
		fmt.Fprintf(os.Stderr, "bench helper: unknown mode %q\n", args[0])
		return 2
	}
}

// receiverMain is the supervised child of the signal test: it writes
// "ready" once it catches SIGUSR1, then one line per SIGUSR1 with the
// CLOCK_MONOTONIC time it got it. It exits when stdin reaches EOF, so the
// bench stops it (through any wrapper) by closing a pipe.
func receiverMain() int {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGUSR1)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	if _, err := os.Stdout.WriteString("ready\n"); err != nil {
		return 1
	}
	buf := make([]byte, 0, 32)
	for range sigs {
		at := monoNow()
		buf = strconv.AppendInt(buf[:0], at, 10)
		buf = append(buf, '\n')
		if _, err := os.Stdout.Write(buf); err != nil {
			return 1
		}
	}
	return 0
}

// reapResult is what `bench helper reap` prints as one JSON line.
type reapResult struct {
	Orphans     int     `json:"orphans"`
	SpawnMillis float64 `json:"spawnMillis"`
	ReapMillis  float64 `json:"reapMillis"` // from release to no orphan left in /proc
	TimedOut    bool    `json:"timedOut"`
	ZombiesLeft int     `json:"zombiesLeft"`
	Error       string  `json:"error,omitempty"`
}

// reapMain is the supervised child of the reaping test, run under a wrapper
// that is PID 1 of a fresh PID namespace. It makes n orphans — processes
// whose parent has exited, so that they now belong to PID 1 — all blocked
// reading one pipe, then closes the pipe so that they all exit at the same
// moment, and measures how long PID 1 takes until none of them is left in
// /proc, not even as a zombie.
func reapMain(args []string) int {
	fs := flag.NewFlagSet("reap", flag.ContinueOnError)
	n := fs.Int("n", 2000, "orphans to make")
	timeout := fs.Duration("timeout", 10*time.Second, "longest wait for the orphans to be reaped")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	res := makeAndReleaseOrphans(*n, *timeout)
	_ = json.NewEncoder(os.Stdout).Encode(res)
	if res.Error != "" {
		return 1
	}
	return 0
}

func makeAndReleaseOrphans(n int, timeout time.Duration) reapResult {
	res := reapResult{Orphans: n}
	fail := func(err error) reapResult { res.Error = err.Error(); return res }
	self := os.Getpid()

	// `setsid -f cat` forks and exits at once: its child, cat, is an orphan
	// in a session of its own (so no wrapper treats it as part of its
	// child's process group), blocked reading the pipe.
	setsid, err := exec.LookPath("setsid")
	if err != nil {
		return fail(err)
	}
	cat, err := exec.LookPath("cat")
	if err != nil {
		return fail(err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fail(err)
	}
	r, w := p[0], p[1]
	devnull, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	attr := &syscall.ProcAttr{Files: []uintptr{uintptr(r), uintptr(devnull), uintptr(devnull)}}
	argv := []string{"setsid", "-f", cat}

	start := time.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	jobs := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				pid, err := syscall.ForkExec(setsid, argv, attr)
				if err == nil {
					var ws unix.WaitStatus
					_, err = unix.Wait4(pid, &ws, 0, nil)
					if err == nil && ws.ExitStatus() != 0 {
						err = fmt.Errorf("setsid -f cat: %s", describeStatus(ws))
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
				}
			}
		}()
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	_ = unix.Close(r)
	if firstErr != nil {
		_ = unix.Close(w)
		return fail(firstErr)
	}
	// Every setsid has exited; wait until each orphan exists.
	deadline := time.Now().Add(10 * time.Second)
	for countOthers(self) < n {
		if time.Now().After(deadline) {
			_ = unix.Close(w)
			return fail(fmt.Errorf("only %d of %d orphans appeared in /proc", countOthers(self), n))
		}
		time.Sleep(time.Millisecond)
	}
	res.SpawnMillis = ms(time.Since(start))

	released := time.Now()
	_ = unix.Close(w) // every cat reads EOF and exits: n zombies for PID 1
	deadline = released.Add(timeout)
	for {
		left := countOthers(self)
		if left == 0 {
			res.ReapMillis = ms(time.Since(released))
			return res
		}
		if time.Now().After(deadline) {
			res.TimedOut = true
			res.ReapMillis = ms(time.Since(released))
			res.ZombiesLeft = countZombies(self)
			return res
		}
		time.Sleep(500 * time.Microsecond)
	}
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// countOthers counts the processes in /proc other than PID 1 and self: in the
// test's PID namespace, the orphans (alive or zombies).
func countOthers(self int) int {
	n := 0
	forEachPid(func(pid int) {
		if pid != 1 && pid != self {
			n++
		}
	})
	return n
}

// countZombies counts the processes in state Z, other than PID 1 and self.
func countZombies(self int) int {
	n := 0
	forEachPid(func(pid int) {
		if pid == 1 || pid == self {
			return
		}
		if st, err := procState(pid); err == nil && st == 'Z' {
			n++
		}
	})
	return n
}

func forEachPid(f func(pid int)) {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil {
			f(pid)
		}
	}
}

// procState is the state letter of /proc/PID/stat (R, S, Z...).
func procState(pid int) (byte, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces or ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 || i+2 >= len(data) {
		return 0, errors.New("bad /proc stat line")
	}
	return data[i+2], nil
}
