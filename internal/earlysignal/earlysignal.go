// Package earlysignal catches signals before any other initialisation of
// lifecycled runs. Between the Go runtime installing its own handlers (about
// 0.1 ms after exec) and main calling signal.Notify, a signal that the
// runtime does not hand to os/signal is fatal: SIGTERM to a Go PID 1 makes
// it exit 2 with no message, SIGHUP or SIGUSR1 kill a Go process that is not
// PID 1. Package initialisation (zap, Prometheus, net/http, gRPC...) takes
// one to three milliseconds, and a container can be told to stop in that
// time.
//
// Go initialises a package as soon as the packages it imports are, ties
// broken by import path (Go 1.21 and later), so a package that imports only
// os/signal and syscall runs its init right after os/signal's, before the
// heavy dependencies. Keep it that way: import nothing else here (sigset
// imports only syscall).
package earlysignal

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/lifecycled/lifecycled/internal/sigset"
)

// caught holds every signal received since init, for main to take over.
// 1024 is far more than any burst main cannot keep up with; os/signal drops
// a signal rather than block when a channel is full.
var caught = make(chan os.Signal, 1024)

// init catches the stop signals first: Notify enables signals one by one,
// each a round trip with the runtime's signal thread, and SIGTERM is the one
// a container is most likely to get in its first milliseconds.
//
// The round trips run on a goroutine of their own while init waits once
// for all of them. During package initialisation the main goroutine is
// locked to the main thread, so each round trip made from init itself costs
// two more thread hand-offs: for lifecycled's 50 signals that was about a
// millisecond of its start-up (GODEBUG=inittrace=1), for nothing. Every
// signal is still caught before init returns.
func init() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		signal.Notify(caught, syscall.SIGTERM, syscall.SIGINT)
		signal.Notify(caught, toOS(sigset.Forwarded())...)
	}()
	<-done
}

// C is the channel every caught signal (sigset.Forwarded) has gone to since the process
// started. There is only one: whoever reads it decides what each signal
// means (see the run, wait, probe and sleep commands).
func C() <-chan os.Signal { return caught }

func toOS(sigs []syscall.Signal) []os.Signal {
	out := make([]os.Signal, len(sigs))
	for i, s := range sigs {
		out[i] = s
	}
	return out
}
