package lifecycle

import (
	"context"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/supervisor"
)

// tailWait bounds how long the termination message waits for the last of
// the child's stderr: the child is gone by then, so the pipe ends at once
// unless a descendant escaped with it or lifecycled's stderr is blocked,
// and neither may hold up the exit.
const tailWait = 500 * time.Millisecond

// stderrTailBytes is how much of the child's stderr is kept: twice the most
// the kubelet reads of a termination message. The tail is masked before it
// is cut to what fits, so a URL cut by the cut to the message is masked
// whole; the kept bytes begin wherever the child's writes put them, maybe
// inside a URL whose "://" is gone (redact.Suffix), and the 4 KiB before
// the message's part keep that start out of it but for a longer word.
const stderrTailBytes = 2 * MaxTerminationMessage

// childStderr returns the child's stderr: nil (lifecycled's own file, handed
// over untouched) unless --termination-log-tail, then the write end of the
// tail's pipe, copied on to Deps.ChildStderr.
func (l *Lifecycle) childStderr() *os.File {
	if !l.cfg.TerminationLogTail {
		return nil
	}
	var out io.Writer = os.Stderr
	if l.childStderrOut != nil {
		out = l.childStderrOut
	}
	tail, w, err := supervisor.NewStderrTail(out, stderrTailBytes)
	if err != nil {
		l.logger.Warn("cannot capture the child's stderr; the termination message will have no tail", zap.Error(err))
		return nil
	}
	l.stderrTail, l.stderrTailW = tail, w
	return w
}

// startStderrTail starts copying once the child runs (started) or gives up
// the pipe (it did not start): lifecycled's copy of the write end closes
// either way, or the copy would never see the end of the stream.
func (l *Lifecycle) startStderrTail(started bool) {
	if l.stderrTail == nil {
		return
	}
	_ = l.stderrTailW.Close()
	if !started {
		l.stderrTail = nil
		return
	}
	go l.stderrTail.Run()
}

// composeTermination is the termination message: the reason line, the
// drain report's line when there was a stop (report, "" if none) and, when
// the child failed (the exit code, after --exit-code-map, is not 0: what
// Kubernetes' FallbackToLogsOnError calls an error), the end of its stderr.
// The report goes in only where it costs neither the reason nor a byte of
// the tail: those say why the app ended, the report how the stop went.
func (l *Lifecycle) composeTermination(reason, report string, code int) string {
	var tail []byte
	if l.stderrTail != nil && code != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), tailWait)
		defer cancel()
		var err error
		if tail, err = l.stderrTail.Tail(ctx); err != nil {
			l.logger.Debug("termination message: stderr tail incomplete", zap.Error(err))
		}
	}
	return withReport(reason, report, tail, l.cfg.terminationLogMax())
}

// withReport is terminationMessage with the report's line after the
// reason, if it fits without cutting the reason or the tail.
func withReport(reason, report string, tail []byte, max int) string {
	without := terminationMessage(reason, tail, max)
	if report == "" {
		return without
	}
	head := reason + "\n" + report
	with := terminationMessage(head, tail, max)
	if len(with) <= max && strings.TrimPrefix(with, redact.URLs(head)) == strings.TrimPrefix(without, redact.URLs(reason)) {
		return with
	}
	return without
}

// stderrTailHeader separates the reason from the child's last words.
const stderrTailHeader = "\n--- last lines of the child's stderr ---\n"

// terminationMessage is the reason line followed by the end of what the
// child wrote to stderr, within max bytes (--termination-log-max): the
// reason is kept whole (it says what happened), the tail gets what is left
// and keeps its most recent bytes, which is where a panic or a stack trace
// ends. The tail is made valid UTF-8 (the API server stores the message as
// a string): a character cut at the start is dropped, and invalid bytes
// become U+FFFD. The secrets of URLs are masked in both, before the tail is
// cut: after, a URL cut at its start would show the rest of its password.
// A tail as long as stderrTailBytes was cut by the supervisor and is masked
// as such (redact.Suffix). An empty tail adds nothing.
func terminationMessage(reason string, tail []byte, max int) string {
	// Masked before measuring: writeTerminationLog masks again, and a
	// mask longer than its password would push the newest bytes out.
	reason = redact.URLs(reason)
	switch {
	case len(tail) >= stderrTailBytes:
		tail = []byte(redact.Suffix(string(tail)))
	case len(tail) > 0:
		tail = []byte(redact.URLs(string(tail)))
	}
	budget := max - len(reason) - len(stderrTailHeader)
	if len(tail) == 0 || budget <= 0 {
		return reason
	}
	if len(tail) > budget {
		tail = tail[len(tail)-budget:]
	}
	for i := 0; i < utf8.UTFMax-1 && len(tail) > 0 && !utf8.RuneStart(tail[0]); i++ {
		tail = tail[1:] // the rest of a character cut above
	}
	s := strings.ToValidUTF8(string(tail), "\uFFFD")
	for len(s) > budget { // U+FFFD is 3 bytes: a replaced byte may not fit
		_, size := utf8.DecodeRuneInString(s)
		s = s[size:]
	}
	return reason + stderrTailHeader + s
}
