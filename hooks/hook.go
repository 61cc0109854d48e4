package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/ctxtime"
	"github.com/lifecycled/lifecycled/internal/httpclient"
	"github.com/lifecycled/lifecycled/internal/logschema"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/supervisor"
)

// Hook names, as in a Kubernetes container's lifecycle.
const (
	PostStart = "postStart"
	PreStop   = "preStop"
)

// Handler kinds, as in a Kubernetes LifecycleHandler.
const (
	HandlerExec    = "exec"
	HandlerHTTPGet = "httpGet"
	HandlerSleep   = "sleep"
)

// DefaultTimeout is --hook-timeout's default, used when Hook.Timeout is
// zero.
const DefaultTimeout = 30 * time.Second

const (
	// maxOutput bounds what a hook's output costs in memory and in the hook
	// log, as the kubelet does for exec probes.
	maxOutput = 4 << 10
	// maxHTTPBody is how much of an httpGet hook's body is read, as the
	// kubelet's HTTP handler reads at most 10 KiB.
	maxHTTPBody = 10 << 10
	// outputGrace is how long an exec hook's output is still read after
	// the hook itself has exited: a background process it left behind may
	// hold the pipe open forever, and must not hold the hook with it.
	outputGrace = 500 * time.Millisecond
)

// Hook is one Kubernetes LifecycleHandler: exactly one of Exec, HTTPURL or
// Sleep is set.
type Hook struct {
	// Name is PostStart or PreStop; it labels logs and metrics.
	Name string
	// Exec is the argv of an exec handler, nil otherwise.
	Exec []string
	// Shell says Exec came from a shell-form command (/bin/sh -c), so logs
	// show the command as the user wrote it.
	Shell bool
	// HTTPURL is the URL of an httpGet handler.
	HTTPURL string
	// Sleep is the duration of a sleep handler.
	Sleep time.Duration
	// Timeout bounds the run, whatever the handler (DefaultTimeout if
	// zero): the contract says --hook-timeout bounds each hook, so a sleep
	// longer than Timeout fails at Timeout.
	Timeout time.Duration
}

// Handler says which kind of handler h is: HandlerExec, HandlerHTTPGet or
// HandlerSleep. A Hook with neither Exec nor HTTPURL is a sleep.
func (h Hook) Handler() string {
	switch {
	case len(h.Exec) > 0:
		return HandlerExec
	case h.HTTPURL != "":
		return HandlerHTTPGet
	default:
		return HandlerSleep
	}
}

// Command renders h as the user configured it, for logs, the hook log and
// the termination log: a JSON array for exec form, the string for shell
// form, the URL, or the sleep duration.
func (h Hook) Command() string {
	switch h.Handler() {
	case HandlerExec:
		if h.Shell && len(h.Exec) == 3 {
			return h.Exec[2]
		}
		b, err := json.Marshal(h.Exec)
		if err != nil {
			return strings.Join(h.Exec, " ")
		}
		return string(b)
	case HandlerHTTPGet:
		return h.HTTPURL
	default:
		return h.Sleep.String()
	}
}

// MaxDuration is the longest h can run, for the termination-grace-period
// budget: the timeout, or the sleep if that ends first.
func (h Hook) MaxDuration() time.Duration {
	timeout := h.timeout()
	if h.Handler() == HandlerSleep && h.Sleep < timeout {
		return h.Sleep
	}
	return timeout
}

func (h Hook) timeout() time.Duration {
	if h.Timeout <= 0 {
		return DefaultTimeout
	}
	return h.Timeout
}

// Describe names the handler and its command the way error messages and
// the termination log show them: exec ["/bin/false"], sh -c "exit 3",
// httpGet http://..., sleep 5s. An httpGet URL is masked here, as one URL
// (redact.URL): in an error's text a space in its query would end it.
func (h Hook) Describe() string {
	switch h.Handler() {
	case HandlerExec:
		if h.Shell {
			return "sh -c " + strconv.Quote(h.Command())
		}
		return "exec " + h.Command()
	case HandlerHTTPGet:
		return h.Handler() + " " + redact.URL(h.Command())
	default:
		return h.Handler() + " " + h.Command()
	}
}

// Result is what one hook run did, for the log, the hook log, metrics and
// the termination log.
type Result struct {
	// Hook is the hook's name (PostStart, PreStop).
	Hook string
	// Handler is HandlerExec, HandlerHTTPGet or HandlerSleep.
	Handler string
	// Command is the hook as configured (see Hook.Command).
	Command string
	// Start is when the run began.
	Start time.Time
	// Duration is how long it ran.
	Duration time.Duration
	// ExitCode is an exec hook's exit code; -1 when it did not exit by
	// itself (killed, not started) or for other handlers.
	ExitCode int
	// HTTPStatus is an httpGet hook's status code, 0 if none came back.
	HTTPStatus int
	// Output is the head of an exec hook's stdout and stderr, or of an
	// httpGet hook's body, cut to 4 KiB with a note saying so.
	Output string
	// Err says why the hook failed; nil means it succeeded.
	Err error
	// Interrupted says why the caller cut the hook short (its context's
	// cause: the child exited, a stop was requested, a second stop
	// signal); nil if it did not. Such a hook has an Err too, but did not
	// fail by itself: it is logged at info as "HOOK interrupted".
	Interrupted error
}

// Runner runs hooks, and records each run in the log, the hook log and the
// metrics.
type Runner struct {
	commands  *supervisor.Reaper
	logger    *zap.Logger
	hookLog   *Log
	metrics   *Metrics
	userAgent string
	client    *http.Client
}

// NewRunner returns a Runner that starts exec hooks through commands, the
// process's one reaper. hookLog and m may be nil. userAgent is sent with
// httpGet hooks so that the receiving side can tell them from traffic.
func NewRunner(commands *supervisor.Reaper, logger *zap.Logger, hookLog *Log, m *Metrics, userAgent string) *Runner {
	return &Runner{
		commands:  commands,
		logger:    logger,
		hookLog:   hookLog,
		metrics:   m,
		userAgent: userAgent,
		client:    httpclient.New(),
	}
}

// Run runs h until it finishes, its timeout passes, or ctx is done (a
// second SIGTERM cancelling a preStop hook); the last two count as
// failures, and an exec hook is then killed with its whole process group.
// Background processes a hook leaves behind when it exits by itself are
// not touched, as with the kubelet; they only stop holding up the result
// after a short grace for its output.
func (r *Runner) Run(ctx context.Context, h Hook) Result {
	res := Result{
		Hook:     h.Name,
		Handler:  h.Handler(),
		Command:  h.Command(),
		Start:    time.Now(),
		ExitCode: -1,
	}
	timeout := h.timeout()
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var err error
	switch res.Handler {
	case HandlerExec:
		err = r.runExec(runCtx, h.Exec, &res)
	case HandlerHTTPGet:
		err = r.runHTTPGet(runCtx, h.HTTPURL, &res)
	default:
		err = ctxtime.Sleep(runCtx, h.Sleep)
	}
	res.Duration = time.Since(res.Start)
	if err != nil {
		// Say why the context ended rather than echo a bare "context
		// canceled": a cancelled preStop and a hung one read differently.
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("cancelled after %s: %w", res.Duration.Round(time.Millisecond), ctx.Err())
			res.Interrupted = context.Cause(ctx)
		case runCtx.Err() != nil:
			err = fmt.Errorf("timed out after %s: %w", timeout, runCtx.Err())
		}
		res.Err = fmt.Errorf("%s: %w", h.Describe(), err)
	}

	r.record(res)
	return res
}

func (r *Runner) record(res Result) {
	r.metrics.observe(res.Hook, res.Err != nil, res.Duration)
	r.hookLog.Hook(res)
	if r.logger == nil {
		return
	}
	fields := []zap.Field{
		zap.String("hook", res.Hook),
		zap.String("handler", res.Handler),
		zap.String("command", redact.URL(res.Command)),
		logschema.Seconds("duration", res.Duration),
	}
	if res.Interrupted != nil {
		r.logger.Info(res.Hook+" interrupted", append(fields, zap.String("reason", res.Interrupted.Error()))...)
		return
	}
	if res.Err != nil {
		fields = append(fields, zap.Error(res.Err))
		if res.Output != "" {
			fields = append(fields, zap.String("output", res.Output))
		}
		r.logger.Warn("hook failed", fields...)
		return
	}
	r.logger.Info("hook succeeded", fields...)
}

// runExec runs argv in its own process group, so that a timeout kills
// whatever the hook started as well as the hook itself. It goes through the
// reaper: lifecycled has one waiter for all its children.
func (r *Runner) runExec(ctx context.Context, argv []string, res *Result) error {
	if r.commands == nil {
		return errors.New("no reaper to run exec hooks")
	}
	out, err := r.commands.RunCommand(ctx, argv, supervisor.CommandOptions{
		MaxOutput:   maxOutput,
		OutputGrace: outputGrace,
	})
	buf := &headBuffer{limit: maxOutput}
	_, _ = buf.Write(out.Output)
	buf.total = out.OutputBytes
	res.Output = buf.String()
	if ctx.Err() != nil {
		// Killed at the deadline, whatever status it died with.
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if out.Status.Exited() {
		res.ExitCode = out.Status.ExitStatus() // -1 (unset) when killed by a signal
	}
	if out.Status.Signaled() {
		return fmt.Errorf("killed by %s", supervisor.SignalName(out.Status.Signal()))
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("exit code %d", res.ExitCode)
	}
	return nil
}

// runHTTPGet sends the GET with the kubelet's client (httpclient: no proxy,
// certificates not verified, same-host redirects), and fails on a status
// of 400 or more, unlike the kubelet, which ignores the status
// (kubernetes#56963): a hook that answers 500 did not do its job.
func (r *Runner) runHTTPGet(ctx context.Context, rawURL string, res *Result) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if r.userAgent != "" {
		req.Header.Set("User-Agent", r.userAgent)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		// url.Error repeats the method and URL the caller already names.
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	res.HTTPStatus = resp.StatusCode
	out := &headBuffer{limit: maxOutput}
	// The body is only evidence for the log; a read error after the
	// status arrived does not change the verdict.
	_, _ = io.Copy(out, io.LimitReader(resp.Body, maxHTTPBody))
	res.Output = out.String()
	if resp.StatusCode >= http.StatusBadRequest {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// headBuffer keeps the first limit bytes written to it and counts, but
// drops, the rest: a hook that writes megabytes must neither block on a
// full pipe nor fill memory.
type headBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	total int64
}

func (b *headBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += int64(len(p))
	if room := b.limit - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// String returns what was kept, at most limit bytes including a note
// saying how much was cut, so that the head stays readable.
func (b *headBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total <= int64(len(b.buf)) {
		return string(b.buf)
	}
	note := fmt.Sprintf("\n[output cut: %d bytes in all, first bytes kept]", b.total)
	return cutUTF8(string(b.buf), b.limit-len(note)) + note
}

// cutUTF8 returns the longest prefix of s of at most n bytes that does not
// split a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	cut := n
	// Back up at most utf8.UTFMax-1 bytes to the start of a rune.
	for i := 0; i < utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return s[:cut]
}
