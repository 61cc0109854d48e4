package main

import (
	"context"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/supervisor"
)

// tailWait bounds how long the termination message waits for the last of
// the child's stderr: the child is gone by then, so the pipe ends at once
// unless a descendant escaped with it or lifecycled's stderr is blocked,
// and neither may hold up the exit.
const tailWait = 500 * time.Millisecond

// childStderr returns the child's stderr: nil (lifecycled's own file, handed
// over untouched) unless --termination-log-tail, then the write end of the
// tail's pipe. The tail copies to the stderr guard, so a SIGPIPE from a
// broken stderr is known as lifecycled's own and not forwarded.
func (a *app) childStderr() *os.File {
	if !a.cfg.terminationLogTail {
		return nil
	}
	var out io.Writer = os.Stderr
	if a.stderrGuard != nil {
		out = a.stderrGuard
	}
	tail, w, err := supervisor.NewStderrTail(out, 4096)
	if err != nil {
		a.logger.Warn("cannot capture the child's stderr; the termination message will have no tail", zap.Error(err))
		return nil
	}
	a.stderrTail, a.stderrTailW = tail, w
	return w
}

// startStderrTail starts copying once the child runs (started) or gives up
// the pipe (it did not start): lifecycled's copy of the write end closes
// either way, or the copy would never see the end of the stream.
func (a *app) startStderrTail(started bool) {
	if a.stderrTail == nil {
		return
	}
	_ = a.stderrTailW.Close()
	if !started {
		a.stderrTail = nil
		return
	}
	go a.stderrTail.Run()
}

// withStderrTail adds the end of the child's stderr to a failed run's
// termination message (the exit code, after --exit-code-map, is not 0: what
// Kubernetes' FallbackToLogsOnError calls an error).
func (a *app) withStderrTail(msg string, code int) string {
	if a.stderrTail == nil || code == 0 {
		return msg
	}
	ctx, cancel := context.WithTimeout(context.Background(), tailWait)
	defer cancel()
	tail, err := a.stderrTail.Tail(ctx)
	if err != nil {
		a.logger.Debug("termination message: stderr tail incomplete", zap.Error(err))
	}
	return drain.TerminationMessage(msg, tail)
}
