// Package lifecycle is the container's life from start to end, as the
// contract tells it: wait for the dependencies, start the child, run
// postStart, supervise it while readiness is served, drain and stop it, and
// record the end (tombstone, termination message, on-exit POSTs).
//
// main builds one Lifecycle from the settings and adds its actors to a
// run.Group: Run is the one that decides the exit code; ProbeReadiness,
// ProbeLiveness and WatchExitWith serve it; Signal, Endpoints and Admin are what the signal
// and HTTP actors call.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/health"
	"github.com/lifecycled/lifecycled/hooks"
	"github.com/lifecycled/lifecycled/internal/background"
	"github.com/lifecycled/lifecycled/internal/kubeevent"
	"github.com/lifecycled/lifecycled/internal/logschema"
	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/internal/sharedfile"
	"github.com/lifecycled/lifecycled/probes"
	"github.com/lifecycled/lifecycled/supervisor"
	"github.com/lifecycled/lifecycled/tombstone"
)

// Exit codes of the contract (section 2) that the lifecycle decides.
const (
	ExitWaitTimeout = 124 // a --wait dependency was not up in time; also `lifecycled wait`'s
	exitPostStart   = 125
	exitCannotExec  = 126
	// exitConfig is the contract's usage or configuration error: another
	// lifecycled holds --name's tombstone lock, or something other than a
	// regular file sits at NAME.lock. Nothing is started.
	exitConfig = 2
)

// Names of the /readyz checks, in the order `?verbose` lists them.
const (
	checkDependencies = "dependencies"
	checkChild        = "child"
	checkPostStart    = "poststart"
	checkProbe        = "readiness-probe"
	checkShutdown     = "shutdown"
)

// checkLiveness is the /livez check that --live feeds.
const checkLiveness = "liveness-probe"

// Config is what one run needs, validated by settings.Validate: every field is a setting
// (or several) in its final, typed form.
type Config struct {
	// Name (--name) names the tombstone and the hook log.
	Name string
	// Command is the child's argv.
	Command []string
	// SingleChild (--single-child) sends signals to the child alone.
	SingleChild bool
	// SignalMap (--signal-map) rewrites forwarded signals.
	SignalMap supervisor.SignalMap
	// ExitCodeMap (--exit-code-map) rewrites the child's exit code.
	ExitCodeMap supervisor.ExitCodeMap

	// Waits (--wait) are waited for before the start, with Wait's
	// schedule; its Logger, Metrics and Options are filled in here.
	Waits []probes.Target
	Wait  probes.WaitConfig
	// Ready (--ready) is the readiness probe, nil if none.
	Ready *probes.ProbeSpec
	// Live (--live) is the liveness probe behind /livez, nil if none; its
	// Liveness is set.
	Live *probes.ProbeSpec

	// PostStart is the postStart hook, nil if none.
	PostStart *hooks.Hook
	// Stop is the stop sequence: drain, preStop, stop signal, grace
	// period. Its StopSignal and GracePeriod also stop what the child
	// leaves in its group when it exits by itself.
	Stop drain.Config

	// HookLogDir, TerminationLog and TombstoneDir are the files of
	// contract section 6; "" turns each off.
	HookLogDir, TerminationLog, TombstoneDir string
	// TerminationLogTail (--termination-log-tail) ends a failed run's
	// termination message with the last bytes of the child's stderr.
	TerminationLogTail bool
	// TerminationLogMax (--termination-log-max) is the most bytes of the
	// termination message, MaxTerminationMessage when 0: the kubelet keeps
	// only the first 12 KiB ÷ (containers + init containers) of each
	// container's message, which is less in a pod of more than 3.
	TerminationLogMax int
	// ExitWith (--exit-with) names the tombstones that stop this run once
	// they say exited.
	ExitWith []string
	// OnExitPost (--on-exit-post) are POSTed to after the child exits.
	OnExitPost []string
	// Events (--events) posts the drain report as a Kubernetes Event on
	// the pod.
	Events bool

	// UserAgent is sent with every HTTP request lifecycled makes.
	UserAgent string
	// Version and Revision are lifecycled's build, for
	// lifecycled_build_info; "" revision reads "unknown".
	Version, Revision string
}

// Deps are what a Lifecycle uses but does not own.
type Deps struct {
	// Logger is lifecycled's own logger.
	Logger *zap.Logger
	// Registry is the private registry every metric goes to and /metrics
	// serves. nil when nothing serves them (no --listen): the metrics are
	// kept but registered nowhere, which costs the start nothing.
	Registry *prometheus.Registry
	// Reaper starts the child, hooks and exec probes, and is the process's
	// one waiter; its Run is the caller's to start and stop.
	Reaper *supervisor.Reaper
	// ChildStderr is where the child's stderr is copied with
	// --termination-log-tail (nil: os.Stderr). main passes its stderr
	// guard, so a SIGPIPE from a broken stderr is known as lifecycled's
	// own and not forwarded.
	ChildStderr io.Writer
}

// child is what the lifecycle needs of the supervised process;
// *supervisor.Child is one, and tests use a fake.
type child interface {
	supervisor.Process
	Pid() int
	ReturnTerminal() error
	FinalStatus() unix.WaitStatus
	LeftInGroup() []string
}

// filesFlushMax bounds how long Run waits, when it ends, for the last
// tombstone and the termination message to be written: other containers'
// --exit-with read the tombstone, but a volume that does not answer must
// not keep lifecycled from exiting.
const filesFlushMax = 2 * time.Second

// Lifecycle is one run of lifecycled.
type Lifecycle struct {
	cfg    Config
	logger *zap.Logger
	reg    *prometheus.Registry

	metrics      *metrics
	probeMetrics *probes.Metrics
	drainMetrics *drain.Metrics
	health       *health.Checks
	hookLog      *hooks.Log
	runner       *hooks.Runner
	// files writes the tombstone and the termination message off the path
	// of supervision, in order (package background); Run starts it.
	files       *background.Queue
	reaper      *supervisor.Reaper
	forwarder   *supervisor.Forwarder
	stop        *stopRequest
	stopSignals atomic.Int64  // SIGTERMs and SIGINTs received
	started     chan struct{} // closed once the child runs
	startedUp   chan struct{} // closed once the child runs and postStart succeeded
	// dials records the probes' connections to the app, which the
	// adaptive drain does not count as traffic.
	dials *drain.Dials

	childStderrOut io.Writer              // Deps.ChildStderr
	stderrTail     *supervisor.StderrTail // with --termination-log-tail
	stderrTailW    *os.File               // the child's end of its pipe

	// start starts the child; tests replace it with a fake.
	start func(supervisor.Spec) (child, error)
	// now is the clock of the tombstone's updatedAt.
	now func() time.Time

	// early is the child StartEarly started, nil if it did not.
	early *earlyStart

	// drainReport is what the stop saw, nil if there was no stop.
	drainReport *drain.Report
	// events is where --events finds the API server and the pod.
	events kubeevent.InCluster

	// noTombstone is set when the tombstone's lock could not be taken:
	// a tombstone is never written without it.
	noTombstone bool

	mu    sync.Mutex
	pid   int
	phase string // the current phase, for the termination message
}

// New returns the Lifecycle of one run. It starts nothing: main adds its
// actors to a run.Group.
func New(cfg Config, deps Deps) *Lifecycle {
	l := &Lifecycle{
		cfg: cfg, logger: deps.Logger, childStderrOut: deps.ChildStderr, reg: deps.Registry,
		reaper: deps.Reaper, stop: newStopRequest(), started: make(chan struct{}), startedUp: make(chan struct{}),
		now: time.Now, dials: drain.NewDials(),
		events: kubeevent.InCluster{Getenv: os.Getenv, Dir: kubeevent.ServiceAccountDir},
	}
	var reg prometheus.Registerer // nil: promauto registers nowhere
	if deps.Registry != nil {
		reg = deps.Registry
	}
	l.metrics = newMetrics(reg, l.now(), cfg.Version, cfg.Revision)
	l.probeMetrics = probes.NewMetrics(reg)
	l.drainMetrics = drain.NewMetrics(reg)

	l.health = health.NewChecks()
	l.health.Set(checkDependencies, len(cfg.Waits) == 0, "waiting for dependencies")
	l.health.Set(checkChild, false, "not started")
	l.health.Set(checkPostStart, cfg.PostStart == nil, "postStart hook has not finished")
	if cfg.Ready != nil {
		l.health.Set(checkProbe, false, "no probe has passed yet")
	}
	l.health.Set(checkShutdown, true, "")
	// Hooked once every check is registered: while they are, the first
	// one alone (dependencies, passing without --wait) reads as ready,
	// which would set lifecycled_time_to_ready_seconds at once.
	l.health.OnReadyChange(l.metrics.setReady)

	if cfg.HookLogDir != "" {
		l.hookLog = hooks.OpenLog(cfg.HookLogDir, cfg.Name, 0, l.logger)
	}
	l.runner = hooks.NewRunner(l.reaper, l.logger, l.hookLog, hooks.NewMetrics(reg), cfg.UserAgent)
	l.forwarder = supervisor.NewForwarder(cfg.SignalMap, l.metrics.signalForwarded)
	l.start = l.startChild
	return l
}

// Run is the container's life from start to end: wait for the
// dependencies, start the child, run postStart, supervise, stop. It returns
// the exit code. When ctx is done (another actor failed), the child is
// stopped as on SIGTERM, never left behind, and Run still returns only once
// it is gone.
func (l *Lifecycle) Run(ctx context.Context) int {
	l.files = background.New(16)
	var lock *tombstone.Lock // nil-safe
	if l.cfg.TombstoneDir != "" {
		if err := os.MkdirAll(l.cfg.TombstoneDir, 0o755); err != nil {
			l.logger.Warn("cannot create the tombstone directory", zap.String("dir", l.cfg.TombstoneDir), zap.Error(err))
		}
		// Held until the end, and by the kernel until the process ends
		// however it ends: --exit-with watchers take a free lock under a
		// tombstone that does not say exited for a death. No tombstone is
		// written without it: a second writer's "exited" would stop the
		// first one's sidecars while it still runs.
		var err error
		lock, err = tombstone.AcquireLock(l.cfg.TombstoneDir, l.cfg.Name)
		var held *tombstone.HeldError
		switch {
		case errors.As(err, &held), errors.Is(err, sharedfile.ErrNotRegular):
			l.files.Close(0)
			_ = l.hookLog.Close()
			l.logger.Error("cannot take the tombstone lock", zap.Error(err))
			return exitConfig
		case err != nil:
			l.noTombstone = true
			l.logger.Warn("cannot lock the tombstone, so it will not be written: --exit-with watchers will not see this container",
				zap.Error(err))
		}
	}
	defer func() {
		// The exited tombstone first, then the lock: a watcher that finds
		// the lock free reads the tombstone's last word.
		if !l.files.Close(filesFlushMax) {
			l.logger.Warn("exiting before the last tombstone was written: the volume does not answer",
				zap.String("dir", l.cfg.TombstoneDir), logschema.Seconds("waited", filesFlushMax))
		}
		if err := l.hookLog.Close(); err != nil {
			l.logger.Warn("exiting before the hook log was written", zap.Error(err))
		}
		_ = lock.Close()
	}()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			l.stop.request(0, "internal error: "+context.Cause(ctx).Error())
		case <-done:
		}
	}()
	return l.lifecycle(context.WithoutCancel(ctx))
}

func (l *Lifecycle) lifecycle(ctx context.Context) int {
	l.enterPhase(tombstone.PhaseWaiting, nil, "")
	if code, ok := l.waitDependencies(ctx); !ok {
		return code
	}
	l.health.Set(checkDependencies, true, "")

	l.enterPhase(tombstone.PhaseStarting, nil, "")
	var c child
	var err error
	if l.early != nil {
		c, err = l.early.child, l.early.err
	} else {
		c, err = l.startNow()
	}
	if err != nil {
		code := exitCannotExec
		var se *supervisor.StartError
		if errors.As(err, &se) {
			code = se.Code
		}
		l.logger.Error("cannot start the child", zap.Error(err))
		l.finish(nil, code, "", err.Error())
		return code
	}
	l.mu.Lock()
	l.pid = c.Pid()
	l.mu.Unlock()
	l.logger.Info("child started", zap.Int("pid", c.Pid()), zap.Strings("command", logArgv(l.cfg.Command)), zap.Int("argc", len(l.cfg.Command)))
	l.health.Set(checkChild, true, "")
	close(l.started)

	if failure := l.postStart(ctx, c); failure != "" {
		l.enterDraining(c)
		l.stopChild(c)
		l.finish(c, exitPostStart, "", failure)
		return exitPostStart
	}
	select {
	case <-l.stop.first: // a stop during postStart: no running phase
	default:
		l.enterPhase(tombstone.PhaseRunning, nil, "")
	}

	var how string
	select {
	case <-c.Exited():
		how = "the child exited by itself"
		l.stoppingLeftovers(c)
		if supervisor.Terminate(c, l.cfg.Stop.StopSignal, l.cfg.Stop.GracePeriod).Killed {
			l.logger.Warn("killed what was left of the child's process group after the grace period")
			how += "; SIGKILL sent to what was left of its process group"
		}
	case <-l.stop.first:
		_, reason := l.stop.requested()
		how = "stopped: " + reason
		l.enterDraining(c)
		if l.stopChild(c) {
			how += fmt.Sprintf("; SIGKILL after the %s grace period", l.cfg.Stop.GracePeriod)
		}
	}
	select {
	case <-c.Done():
	default:
		// Terminate waited supervisor.KillWait after SIGKILL: what is
		// left cannot be ended by a signal (a zombie whose parent lives
		// outside the group, a process in uninterruptible sleep), and
		// waiting for it would make the grace period a lie.
		left := c.LeftInGroup()
		l.logger.Warn("exiting with processes left in the child's process group after SIGKILL",
			logschema.Seconds("waited", supervisor.KillWait), zap.Strings("processes", left))
		how += fmt.Sprintf("; %d process(es) left in the child's process group after SIGKILL", len(left))
	}
	if err := c.ReturnTerminal(); err != nil {
		l.logger.Debug("cannot take the terminal back", zap.Error(err))
	}
	l.health.Set(checkChild, false, "exited")
	code := l.cfg.ExitCodeMap.Map(supervisor.ExitCode(c.FinalStatus()))
	l.finish(c, code, how, "")
	return code
}

// waitDependencies waits for every --wait target. It returns ok=false with
// the exit code when lifecycled must end without starting the child.
func (l *Lifecycle) waitDependencies(ctx context.Context) (int, bool) {
	if len(l.cfg.Waits) == 0 {
		return 0, true
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.stop.first:
			cancel()
		case <-wctx.Done():
		}
	}()
	cfg := l.cfg.Wait
	cfg.Logger = l.logger
	cfg.Metrics = l.probeMetrics
	cfg.Options = l.probeOptions()
	err := probes.WaitAll(wctx, l.cfg.Waits, cfg)
	select {
	case <-l.stop.first:
		// A stop before the start ends here, as if the child had been
		// killed by that signal; a stop that was no signal is a success.
		sig, reason := l.stop.requested()
		code := 0
		if sig != 0 {
			code = 128 + int(sig)
		}
		l.logger.Info("stopped while waiting for dependencies", zap.String("reason", reason))
		l.finish(nil, code, "", "stopped while waiting for dependencies: "+reason)
		return code, false
	default:
	}
	if err != nil {
		l.logger.Error("gave up waiting for dependencies", zap.Error(err))
		l.finish(nil, ExitWaitTimeout, "", err.Error())
		return ExitWaitTimeout, false
	}
	return 0, true
}

// earlyStart is what StartEarly's start gave.
type earlyStart struct {
	child child
	err   error
}

// StartEarly starts the child at once when nothing has to come first (no
// --wait, no tombstone lock to take), before main builds what only serves
// the run (the start-up line, the registry's collectors, the actors): every
// millisecond before the fork is a millisecond the app starts late, and
// what comes after it runs beside the app. Run then goes on from the
// child's start; phases and the "child started" line come from Run, in
// their usual order. It reports whether it started (or tried to start) the
// child.
func (l *Lifecycle) StartEarly() bool {
	if l.early != nil || len(l.cfg.Waits) > 0 || l.cfg.TombstoneDir != "" {
		return false
	}
	c, err := l.startNow()
	l.early = &earlyStart{child: c, err: err}
	return true
}

// startNow starts the child, with its stderr through the tail pipe of
// --termination-log-tail if there is one.
func (l *Lifecycle) startNow() (child, error) {
	c, err := l.start(supervisor.Spec{
		Argv:              l.cfg.Command,
		SingleChild:       l.cfg.SingleChild,
		ParentDeathSignal: syscall.SIGKILL,
		Stderr:            l.childStderr(),
	})
	l.startStderrTail(err == nil)
	return c, err
}

// startChild starts the child through the reaper and hands it the signals
// that arrived before it existed.
func (l *Lifecycle) startChild(spec supervisor.Spec) (child, error) {
	c, err := l.reaper.Start(spec)
	if err != nil {
		return nil, err
	}
	l.forwarder.Attach(c)
	return c, nil
}

// postStart runs the postStart hook right after the start, as the kubelet
// does, and returns why it failed ("" on success). If the child exits
// during the hook, the hook is cancelled and the child's exit wins.
func (l *Lifecycle) postStart(ctx context.Context, c child) string {
	if l.cfg.PostStart != nil {
		// The cause is what the runner logs as the reason of a
		// "postStart interrupted" line: no failure of the hook's own.
		hctx, cancel := context.WithCancelCause(ctx)
		go func() {
			select {
			case <-c.Exited():
				cancel(errors.New("the child exited"))
			case <-l.stop.first:
				_, reason := l.stop.requested()
				cancel(errors.New("stop requested: " + reason))
			case <-hctx.Done():
			}
		}()
		res := l.runner.Run(hctx, *l.cfg.PostStart)
		interrupted := hctx.Err() != nil // read before cancel(), which sets it
		cancel(nil)
		if res.Err != nil && !interrupted {
			l.logger.Error("postStart hook failed", zap.Error(res.Err))
			return fmt.Sprintf("postStart hook failed: %v (phase starting)", res.Err) // finish comes after the stop sequence
		}
		if res.Err != nil {
			return "" // the child exited or a stop came: the caller handles it
		}
	}
	l.health.Set(checkPostStart, true, "")
	l.health.SetStarted(true)
	close(l.startedUp)
	return ""
}

// stoppingLeftovers says at once that nothing serves any more when the
// child exited by itself but left processes in its group (a background job
// that ignores SIGTERM): readiness fails, the phase is draining and one line
// says what is being stopped. lifecycled exits only once they are gone, up
// to the grace period later, and until then a /readyz of 200 or a tombstone
// saying running would be a lie. The phase is draining, not exited: exited
// is the last word, with the exit code, and --exit-with watchers would stop
// their sidecars while the group still runs. When the child was alone in
// its group, exited follows at once and nothing is said here.
func (l *Lifecycle) stoppingLeftovers(c child) {
	select {
	case <-c.Done():
		return
	default:
	}
	ws := c.FinalStatus()
	end := childEnd(ws)
	l.health.Set(checkChild, false, end+"; stopping what is left of its process group")
	l.enterPhase(tombstone.PhaseDraining, nil, "")
	l.logger.Info("child exited; stopping what is left of its process group",
		zap.Int("exit_code", supervisor.ExitCode(ws)), zap.Strings("processes", c.LeftInGroup()),
		zap.String("stop_signal", supervisor.SignalName(l.cfg.Stop.StopSignal)),
		logschema.Seconds("grace_period", l.cfg.Stop.GracePeriod))
}

// enterDraining is the stop sequence's first step (drain.StepDraining),
// taken unless the child is already gone, as the sequence takes it: /readyz
// fails (unless --drain-readiness keep) and the phase is draining.
func (l *Lifecycle) enterDraining(c child) {
	select {
	case <-c.Done():
		return
	default:
	}
	if !l.cfg.Stop.KeepReady {
		l.health.Set(checkShutdown, false, "draining")
	}
	l.enterPhase(tombstone.PhaseDraining, nil, "")
}

// stopChild runs the stop sequence; it reports whether SIGKILL was needed.
// The caller has entered its first step, draining (enterDraining).
func (l *Lifecycle) stopChild(c child) bool {
	cfg := l.cfg.Stop
	cfg.Own = l.dials
	seq := drain.NewSequence(cfg, c, l.runner, l.logger, l.drainMetrics, func(step string) {
		if step == drain.StepGrace && l.cfg.Stop.KeepReady {
			// --drain-readiness keep: never 200 for an app told to stop.
			l.health.Set(checkShutdown, false, "stop signal sent")
		}
		l.logger.Info("stop sequence", zap.String("step", step))
	})
	killed := seq.Run(l.stop.second)
	r := seq.Report()
	l.drainReport = &r
	l.logger.Info("drain report", r.Fields()...)
	return killed
}

// enterPhase records a phase in the metrics, the tombstone and the hook log.
func (l *Lifecycle) enterPhase(phase string, exitCode *int, signal string) {
	l.metrics.setPhase(phase)
	l.mu.Lock()
	pid := l.pid
	l.phase = phase
	l.mu.Unlock()
	l.hookLog.Phase(phase, pid) // queued: see hooks.Log
	if l.cfg.TombstoneDir == "" || l.noTombstone {
		return
	}
	// The tombstone is written (and synced) on the files queue, in
	// order: a hung shared volume must not keep the stop signal from
	// being sent after the draining phase.
	t := tombstone.Tombstone{Name: l.cfg.Name, Phase: phase, PID: pid, ExitCode: exitCode, Signal: signal, UpdatedAt: l.now()}
	queued := l.files.Go(func() {
		if err := tombstone.Write(l.cfg.TombstoneDir, t); err != nil {
			l.logger.Warn("cannot write tombstone", zap.String("dir", l.cfg.TombstoneDir), zap.Error(err))
		}
	})
	if !queued {
		l.logger.Warn("tombstone not written: earlier writes are still waiting for the volume",
			zap.String("dir", l.cfg.TombstoneDir), zap.String("phase", phase))
	}
}

// Signal handles a signal lifecycled caught: SIGTERM and SIGINT start the
// stop sequence (a second one skips what is left of its waits), every other
// signal goes to the child, or waits for it to start.
func (l *Lifecycle) Signal(sig syscall.Signal) { l.signal(sig, false) }

// SignalEarly is Signal for a signal lifecycled caught while it was still
// starting, before its signal actor ran: StartEarly may have forked the
// child since, and the child may have no handler yet. A signal to forward
// waits for the child's handler, as one that came before the start does.
func (l *Lifecycle) SignalEarly(sig syscall.Signal) { l.signal(sig, true) }

func (l *Lifecycle) signal(sig syscall.Signal, early bool) {
	switch {
	case sig == syscall.SIGTERM || sig == syscall.SIGINT:
		// One line for the first: a storm of SIGTERMs (a supervisor
		// that repeats itself, a script in a loop) must not flood the
		// log. The exiting line counts them all.
		if l.stopSignals.Add(1) == 1 {
			l.logger.Info("stop requested", zap.String("signal", supervisor.SignalName(sig)))
		}
		l.stop.request(sig, "received "+supervisor.SignalName(sig))
	case early:
		l.forwarder.Remember(sig)
	default:
		if err := l.forwarder.Forward(sig); err != nil {
			l.logger.Warn("cannot forward signal", zap.String("signal", supervisor.SignalName(sig)), zap.Error(err))
			return
		}
		l.logger.Debug("signal forwarded, or kept until the child has started", zap.String("signal", supervisor.SignalName(sig)))
	}
}

// ProbeReadiness is the readiness probe's actor: it probes from the
// child's start until ctx is done. Without --ready it only waits for ctx.
func (l *Lifecycle) ProbeReadiness(ctx context.Context) error {
	if l.cfg.Ready == nil {
		<-ctx.Done()
		return nil
	}
	prober := probes.NewProber(*l.cfg.Ready, l.probeOptions(), l.logger, l.probeMetrics,
		func(ready bool, reason string) { l.health.Set(checkProbe, ready, reason) })
	select {
	case <-l.started:
	case <-ctx.Done():
		return nil
	}
	// It goes on while the stop sequence drains: the adaptive drain does
	// not count the probe's connections (probeOptions), and with
	// --drain-readiness keep a failing probe is what turns /readyz 503
	// before the stop signal.
	return prober.Run(ctx)
}

// ProbeLiveness is the --live actor. /livez must only fail when a restart
// would help, so the probe runs only while the child is up and running as
// it should: it starts once postStart has succeeded (as the kubelet holds
// liveness back until a startup probe passes) and it stops, passing, when
// the stop sequence starts (an application that stops listening while it
// drains is not hung, and a restart then would cut the drain short).
// Without --live it only waits for ctx.
func (l *Lifecycle) ProbeLiveness(ctx context.Context) error {
	if l.cfg.Live == nil {
		<-ctx.Done()
		return nil
	}
	l.health.SetLive(checkLiveness, true, "")
	select {
	case <-l.startedUp:
	case <-ctx.Done():
		return nil
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.stop.first:
		case <-pctx.Done():
		}
		cancel()
	}()
	prober := probes.NewProber(*l.cfg.Live, l.probeOptions(), l.logger, nil,
		func(live bool, reason string) { l.health.SetLive(checkLiveness, live, reason) })
	_ = prober.Run(pctx) // returns when pctx ends; no more calls to the hook after it
	if ctx.Err() == nil {
		l.health.SetLive(checkLiveness, true, "")
	}
	<-ctx.Done()
	return nil
}

// WatchExitWith is the --exit-with actor: once every named container has
// exited, or died without saying so, stop as on SIGTERM (the sidecar of a
// Job).
func (l *Lifecycle) WatchExitWith(ctx context.Context) error {
	if len(l.cfg.ExitWith) == 0 {
		<-ctx.Done()
		return nil
	}
	died, err := tombstone.WatchExited(ctx, l.cfg.TombstoneDir, l.cfg.ExitWith, 0, l.logger)
	if err == nil {
		reason := strings.Join(l.cfg.ExitWith, ", ") + " exited"
		if len(died) > 0 {
			reason = strings.Join(died, ", ") + " died without writing exited (lock released)"
			l.logger.Warn("stopping: "+reason, zap.Strings("exit_with", l.cfg.ExitWith), zap.Strings("died", died))
		} else {
			l.logger.Info("stopping: watched containers exited", zap.Strings("exit_with", l.cfg.ExitWith))
		}
		l.stop.request(0, reason)
	}
	<-ctx.Done()
	return nil
}

// probeOptions are the options of every check: exec probes run through the
// reaper, lifecycled's one waiter; connections are recorded as
// lifecycled's own, for the adaptive drain.
func (l *Lifecycle) probeOptions() probes.Options {
	return probes.Options{UserAgent: l.cfg.UserAgent, Commands: l.reaper, Control: l.dials.Control}
}

// logArgv is the child's argv as the "child started" line shows it: the
// first arguments, each cut short, so that a command line of megabytes
// (xargs, a generated config passed inline) makes one readable line.
func logArgv(argv []string) []string {
	const maxArgs, maxArg, maxTotal = 32, 256, 2048
	out := make([]string, 0, min(len(argv), maxArgs+1))
	total := 0
	for i, a := range argv {
		if i == maxArgs || total >= maxTotal {
			out = append(out, fmt.Sprintf("... (%d more)", len(argv)-i))
			break
		}
		if len(a) > maxArg {
			// Masked before the cut, which could leave a password's
			// start with no '@' after it, unmasked by the log's core.
			n := len(a)
			a = redact.URL(a)
			if len(a) > maxArg {
				a = a[:maxArg] + fmt.Sprintf("... (%d bytes)", n)
			}
		}
		total += len(a)
		out = append(out, a)
	}
	return out
}

// terminationLogMax is TerminationLogMax, or its default.
func (c *Config) terminationLogMax() int {
	if c.TerminationLogMax <= 0 {
		return MaxTerminationMessage
	}
	return min(c.TerminationLogMax, MaxTerminationMessage)
}
