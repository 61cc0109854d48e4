package lifecycle

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/internal/httpclient"
	"github.com/lifecycled/lifecycled/internal/kubeevent"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/supervisor"
	"github.com/lifecycled/lifecycled/tombstone"
)

// finish records the end: the exited phase, the termination message and the
// --on-exit-post calls. failure is set when the end was lifecycled's
// decision (a dependency, a hook, a start error); how says how the child
// ended otherwise.
func (l *Lifecycle) finish(c child, code int, how, failure string) {
	var sig string
	l.mu.Lock()
	phase := l.phase
	l.mu.Unlock()
	msg := failure
	if msg != "" && !strings.Contains(msg, "(phase ") {
		msg += " (phase " + phase + ")"
	}
	if c != nil {
		ws := c.FinalStatus()
		if ws.Signaled() {
			sig = supervisor.SignalName(ws.Signal())
		}
		end := childEnd(ws)
		if mapped := supervisor.ExitCode(ws); mapped != code && failure == "" {
			end += fmt.Sprintf(" (exit code %d mapped to %d)", mapped, code)
		}
		if msg == "" {
			msg = end + " (phase " + phase + "); " + how
		} else {
			msg += "; " + end
		}
	}
	l.enterPhase(tombstone.PhaseExited, &code, sig)
	fields := []zap.Field{zap.Int("exit_code", code), zap.String("reason", msg)}
	if n := l.stopSignals.Load(); n > 1 {
		// Only the first had a line of its own ("stop requested").
		fields = append(fields, zap.Int64("stop_signals", n))
	}
	if failure != "" {
		// The cause is already on stderr, as one line of its own.
		l.logger.Debug("exiting", fields...)
	} else {
		l.logger.Info("exiting", fields...)
	}
	report := ""
	if l.drainReport != nil {
		report = l.drainReport.Summary()
	}
	if l.cfg.TerminationLog != "" {
		// On the files queue, after the exited tombstone: bounded at the
		// end of Run by filesFlushMax like it. The stderr tail waits there
		// too (at most tailWait), never on the stop path itself.
		l.files.Go(func() {
			if c != nil {
				msg = l.composeTermination(msg, report, code)
			}
			if err := writeTerminationLog(l.cfg.TerminationLog, msg, l.cfg.terminationLogMax()); err != nil {
				l.logger.Warn("cannot write termination log", zap.String("path", l.cfg.TerminationLog), zap.Error(err))
			}
		})
	}
	var event sync.WaitGroup
	if l.cfg.Events && l.drainReport != nil {
		// Beside the on-exit POSTs: each is bounded, neither waits for
		// the other.
		event.Go(func() { l.postDrainEvent(*l.drainReport) })
	}
	l.postOnExit()
	event.Wait()
}

// eventTimeout bounds the --events POST: the stop is over, and only the
// exit waits for it.
const eventTimeout = 2 * time.Second

// postDrainEvent posts the drain report as a Kubernetes Event on the pod
// (--events): Warning when the stop cut something, Normal otherwise. A
// failure is one line and changes nothing else.
func (l *Lifecycle) postDrainEvent(r drain.Report) {
	ev := kubeevent.Event{Type: kubeevent.Normal, Reason: "Drained", Message: r.Summary()}
	if r.Warning() {
		ev.Type, ev.Reason = kubeevent.Warning, "DrainCutShort"
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := l.events.Post(ctx, ev); err != nil {
		l.logger.Warn("cannot post the drain report as a Kubernetes Event (--events)", zap.Error(err))
		return
	}
	l.logger.Info("drain report posted as a Kubernetes Event", zap.String("type", ev.Type), zap.String("reason", ev.Reason))
}

// childEnd says how the child ended: "child exited with code N" or "child
// killed by SIGNAME".
func childEnd(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "child killed by " + supervisor.SignalName(ws.Signal())
	}
	return fmt.Sprintf("child exited with code %d", ws.ExitStatus())
}

// postOnExit tells the other containers of the pod (Istio's /quitquitquit,
// Linkerd's /shutdown) that the child is gone, all at once, each call
// bounded by 5 s; the client is httpclient's, as for probes and hooks.
func (l *Lifecycle) postOnExit() {
	if len(l.cfg.OnExitPost) == 0 {
		return
	}
	client := httpclient.New()
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for _, u := range l.cfg.OnExitPost {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), onExitTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
			if err == nil {
				req.Header.Set("User-Agent", l.cfg.UserAgent)
				var resp *http.Response
				if resp, err = client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
					_ = resp.Body.Close()
					l.logger.Info("posted on exit", zap.String("url", u), zap.Int("http_status", resp.StatusCode))
					return
				}
			}
			l.logger.Warn("on-exit POST failed", zap.String("url", u), zap.Error(err))
		})
	}
	wg.Wait()
}

// onExitTimeout bounds each --on-exit-post call (contract section 6).
const onExitTimeout = 5 * time.Second

// MaxTerminationMessage is the most the kubelet reads from a container's
// termination message file (the last bytes of a longer one). In a pod of
// more than 3 containers it keeps less: see TerminationLogMax.
const MaxTerminationMessage = 4096

// writeTerminationLog writes message to path (--termination-log), cut at a
// character boundary to max bytes (--termination-log-max), keeping the
// head where the reason is.
//
// The file is written in place rather than renamed over: Kubernetes
// bind-mounts /dev/termination-log, and a rename onto a mount point fails.
func writeTerminationLog(path, message string, max int) error {
	// The message ends up in the pod's status, which anyone who can read
	// pods sees: no password of a URL it names.
	message = redact.URLs(message)
	if len(message) > max {
		const note = " [truncated]"
		cut := max - len(note)
		for cut > 0 && !utf8.RuneStart(message[cut]) {
			cut-- // never half a character
		}
		message = message[:cut] + note
	}
	if err := os.WriteFile(path, []byte(message), 0o644); err != nil {
		return fmt.Errorf("write termination log %s: %w", path, err)
	}
	return nil
}
