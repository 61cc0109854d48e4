// Command gofloor is the smallest init a Go program can be: the floor any
// Go wrapper stands on. The bench builds it at run time with lifecycled's
// own build flags (CGO_ENABLED=0, -trimpath, -s -w) and measures it beside
// lifecycled, so that the report can tell how much of lifecycled's cost is
// Go's and how much is lifecycled's own.
//
//	gofloor -signals 1,2,3,... -- COMMAND [ARG...]
//
// It registers the given signals with os/signal (the bench passes
// lifecycled's own list), starts COMMAND in its own process group, forwards
// every signal to that group, reaps every child on SIGCHLD (it becomes a
// subreaper when it is not PID 1) and exits with COMMAND's code. No flags
// library, no logging, no metrics, no stop sequence, no signal.Stop.
package main

import (
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

const prSetChildSubreaper = 36

func main() {
	args := os.Args[1:]
	var sigs []os.Signal
	if len(args) >= 2 && args[0] == "-signals" {
		for _, f := range strings.Split(args[1], ",") {
			if n, err := strconv.Atoi(f); err == nil {
				sigs = append(sigs, syscall.Signal(n))
			}
		}
		args = args[2:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		os.Stderr.WriteString("usage: gofloor -signals N,N,... -- COMMAND [ARG...]\n")
		os.Exit(2)
	}
	fwd := make(chan os.Signal, 1024)
	signal.Notify(fwd, sigs...)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	if os.Getpid() != 1 {
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		os.Exit(127)
	}
	pid, err := syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		os.Exit(126)
	}
	go func() {
		for s := range fwd {
			_ = syscall.Kill(-pid, s.(syscall.Signal))
		}
	}()
	for {
		var ws syscall.WaitStatus
		p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case err == nil && p == pid:
			if ws.Signaled() {
				os.Exit(128 + int(ws.Signal()))
			}
			os.Exit(ws.ExitStatus())
		case err == nil && p > 0:
			continue // an adopted orphan: reaped, look for more
		case err == syscall.EINTR:
			continue
		}
		<-chld
	}
}
