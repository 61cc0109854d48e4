// Command sigrecorder is a test child for the integration tests: it records
// every signal it receives, one decimal number per line, in DIR/signals and
// exits with 128+N on SIGTERM or SIGINT (after recording it), as a well
// behaved program stopped by that signal would be reported by a shell.
//
//	sigrecorder DIR
//
// DIR/ready (containing the recorder's pid) appears once every handler is in
// place, so a test can send signals without racing the start-up.
//
// It listens to every catchable signal, SIGURG and SIGCHLD included, so that
// a signal lifecycled should not pass on shows up. The Go runtime sends
// itself SIGURG to preempt goroutines: start it with
// GODEBUG=asyncpreemptoff=1 so every recorded SIGURG came from outside.
// SIGPROF cannot be observed from Go at all (the runtime keeps it for the
// profiler), so it is not recorded.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sigrecorder DIR")
		os.Exit(2)
	}
	dir := os.Args[1]

	var sigs []os.Signal
	for n := 1; n <= 64; n++ {
		switch syscall.Signal(n) {
		case syscall.SIGKILL, syscall.SIGSTOP, // cannot be caught
			syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL, // the runtime's crashes
			syscall.SIGTRAP, syscall.SIGSYS, syscall.SIGPROF:
			continue
		}
		if n == 32 || n == 33 { // glibc's own, not usable by programs
			continue
		}
		sigs = append(sigs, syscall.Signal(n))
	}
	ch := make(chan os.Signal, 256)
	signal.Notify(ch, sigs...)

	log, err := os.OpenFile(filepath.Join(dir, "signals"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigrecorder:", err)
		os.Exit(1)
	}
	ready := filepath.Join(dir, "ready")
	if err := os.WriteFile(ready+".tmp", []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "sigrecorder:", err)
		os.Exit(1)
	}
	if err := os.Rename(ready+".tmp", ready); err != nil { // appears complete or not at all
		fmt.Fprintln(os.Stderr, "sigrecorder:", err)
		os.Exit(1)
	}

	for s := range ch {
		n := int(s.(syscall.Signal))
		if _, err := fmt.Fprintf(log, "%d\n", n); err != nil {
			fmt.Fprintln(os.Stderr, "sigrecorder:", err)
			os.Exit(1)
		}
		if s == syscall.SIGTERM || s == syscall.SIGINT {
			os.Exit(128 + n)
		}
	}
}
