package drain

import (
	"context"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/logschema"
	"github.com/lifecycled/lifecycled/supervisor"
)

// Steps of the stop sequence, as passed to the onPhase callback. Only
// StepDraining is also a tombstone phase; the others are for logs and the
// hook log. StepDrainDelay, StepDrainConnections, StepPreStop and StepGrace
// also label lifecycled_stop_phase_seconds.
const (
	StepDraining         = "draining"          // readiness must fail now
	StepDrainDelay       = "drain_delay"       // waiting --drain-delay
	StepDrainConnections = "drain_connections" // waiting for established connections to end
	StepPreStop          = "pre_stop"          // the preStop hook runs
	StepGrace            = "grace"             // the stop signal was sent; waiting up to the grace period
	StepKill             = "kill"              // the grace period ran out; SIGKILL was sent
)

// Defaults for zero Config fields that are not settings. The settings'
// defaults (--grace-period, --drain-timeout) live with the flags, in one
// place; here a zero duration means zero: no grace period, no wait.
const (
	DefaultPollConns = 100 * time.Millisecond
	DefaultProcRoot  = "/proc"
)

// connsLogEvery spaces out the "still waiting for connections" lines.
const connsLogEvery = 5 * time.Second

// Config is the stop sequence's configuration. A zero duration means no
// wait (GracePeriod 0: SIGKILL right after the stop signal, as a Kubernetes
// grace period of 0); a zero signal is SIGTERM, zero PollConns and ProcRoot
// take the defaults above, and a zero DrainPort turns the connection drain
// off.
type Config struct {
	// DrainDelay (--drain-delay) gives endpoints and iptables rules time
	// to drop the pod before the app stops taking connections.
	DrainDelay time.Duration
	// DrainPort (--drain-connections) is the local port whose established
	// connections are waited for; 0 turns this step off.
	DrainPort int
	// DrainTimeout (--drain-timeout) bounds the wait for connections.
	DrainTimeout time.Duration
	// PollConns is how often connections are counted.
	PollConns time.Duration
	// PreStop is the preStop hook, nil if none.
	PreStop *Hook
	// StopSignal (--stop-signal) is sent when draining is over.
	StopSignal syscall.Signal
	// GracePeriod (--grace-period) is the most the child gets between the
	// stop signal and SIGKILL.
	GracePeriod time.Duration
	// ProcRoot is where /proc is mounted, for counting connections.
	ProcRoot string
}

// Sequence is the stop sequence of contract section 5, run once per
// container stop.
type Sequence struct {
	cfg     Config
	proc    Process
	runner  *Runner
	logger  *zap.Logger
	metrics *Metrics
	onPhase func(step string)
}

// NewSequence returns a Sequence over proc. runner may be nil when there is
// no preStop hook; m may be nil. onPhase, if not nil, is called
// synchronously as each step begins (the Step constants) and must return
// quickly: main uses StepDraining to fail readiness and write the
// tombstone.
func NewSequence(cfg Config, proc Process, runner *Runner, logger *zap.Logger, m *Metrics, onPhase func(step string)) *Sequence {
	if cfg.PollConns <= 0 {
		cfg.PollConns = DefaultPollConns
	}
	if cfg.StopSignal == 0 {
		cfg.StopSignal = syscall.SIGTERM
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = DefaultProcRoot
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if onPhase == nil {
		onPhase = func(string) {}
	}
	if runner == nil {
		runner = NewRunner(nil, logger, nil, m, "")
	}
	return &Sequence{cfg: cfg, proc: proc, runner: runner, logger: logger, metrics: m, onPhase: onPhase}
}

// Run stops the child: readiness off, drain delay, connection drain,
// preStop, stop signal, and SIGKILL to the group once the grace period is
// over. It returns as soon as proc is done, so the grace period is a
// ceiling, and reports whether SIGKILL was needed.
//
// Closing (or sending on) skip, on a second SIGTERM or SIGINT, cuts short
// whatever is left of the drain and preStop and goes straight to the stop
// signal. If the child exits before the stop signal, the sequence ends
// there. If ctx is done, the group is killed at once and Run returns
// without waiting for it.
func (s *Sequence) Run(ctx context.Context, skip <-chan struct{}) (killed bool) {
	done := s.proc.Done()
	select {
	case <-done:
		return false
	default:
	}

	s.enter(StepDraining)
	s.prepare(ctx, skip)

	select {
	case <-done:
		s.logger.Info("child exited while draining; stop sequence ends")
		return false
	case <-s.proc.Exited():
		// Done follows Exited at once when the child was alone in its
		// group; otherwise what it left still gets the stop signal and
		// the grace period, as after any exit of the child.
		select {
		case <-done:
			s.logger.Info("child exited while draining; stop sequence ends")
			return false
		case <-time.After(100 * time.Millisecond):
		}
		s.logger.Info("child exited while draining; stopping what is left of its process group")
	default:
	}
	if ctx.Err() != nil {
		s.kill()
		return true
	}
	return s.stop(ctx)
}

// prepare runs steps 2–4 (drain delay, connection drain, preStop) under a
// context that ends on skip, on the child's exit, or with ctx.
func (s *Sequence) prepare(ctx context.Context, skip <-chan struct{}) {
	prepCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-skip:
			s.logger.Info("second stop signal: skipping the rest of the drain and preStop")
		case <-s.proc.Exited():
		case <-prepCtx.Done():
		}
		cancel()
	}()

	if s.cfg.DrainDelay > 0 && prepCtx.Err() == nil {
		s.timed(StepDrainDelay, func() {
			s.logger.Info("drain delay", logschema.Seconds("delay", s.cfg.DrainDelay))
			_ = sleep(prepCtx, s.cfg.DrainDelay)
		})
	}
	if s.cfg.DrainPort > 0 && prepCtx.Err() == nil {
		s.timed(StepDrainConnections, func() { s.drainConnections(prepCtx) })
	}
	if s.cfg.PreStop != nil && prepCtx.Err() == nil {
		s.timed(StepPreStop, func() {
			// A failed preStop is logged by the runner; as in
			// Kubernetes, the container is stopped regardless.
			s.runner.Run(prepCtx, *s.cfg.PreStop)
		})
	}
}

// drainConnections waits until no established connection to DrainPort is
// left, at most DrainTimeout.
func (s *Sequence) drainConnections(ctx context.Context) {
	port := s.cfg.DrainPort
	deadline := time.NewTimer(s.cfg.DrainTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(s.cfg.PollConns)
	defer poll.Stop()
	var lastLog time.Time
	for {
		n, err := EstablishedConns(s.cfg.ProcRoot, port)
		if err != nil {
			// Without the table there is nothing to wait for;
			// waiting the whole timeout would only delay the stop.
			s.logger.Warn("cannot count connections, not waiting for them", zap.Int("port", port), zap.Error(err))
			return
		}
		if n == 0 {
			s.logger.Info("no connections left", zap.Int("port", port))
			return
		}
		if time.Since(lastLog) >= connsLogEvery {
			s.logger.Info("waiting for connections to close", zap.Int("port", port), zap.Int("connections", n))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			s.logger.Warn("drain timeout: connections still open, stopping anyway",
				zap.Int("port", port), zap.Int("connections", n), logschema.Seconds("timeout", s.cfg.DrainTimeout))
			return
		case <-poll.C:
		}
	}
}

// stop sends the stop signal and escalates to SIGKILL when the grace period
// runs out, whichever comes first of that and the group being gone.
func (s *Sequence) stop(ctx context.Context) (killed bool) {
	done := s.proc.Done()
	s.enter(StepGrace)
	start := time.Now()
	s.logger.Info("sending stop signal",
		zap.String("signal", supervisor.SignalName(s.cfg.StopSignal)), logschema.Seconds("grace_period", s.cfg.GracePeriod))
	if err := s.proc.Signal(s.cfg.StopSignal); err != nil {
		// Usually the child exited a moment ago; done will tell.
		s.logger.Warn("send stop signal", zap.String("signal", supervisor.SignalName(s.cfg.StopSignal)), zap.Error(err))
	}

	grace := time.NewTimer(s.cfg.GracePeriod)
	defer grace.Stop()
	exited := s.proc.Exited()
wait:
	for {
		select {
		case <-done:
			s.metrics.setStep(StepGrace, time.Since(start))
			return false
		case <-exited:
			// In single-child mode the stop signal reached the child
			// alone; what it leaves in its group is told now rather
			// than left for SIGKILL.
			exited = nil
			_ = s.proc.SignalRest(s.cfg.StopSignal)
		case <-ctx.Done():
			s.metrics.setStep(StepGrace, time.Since(start))
			s.kill()
			return true
		case <-grace.C:
			break wait
		}
	}
	s.metrics.setStep(StepGrace, time.Since(start))
	s.logger.Warn("grace period over, killing the process group", logschema.Seconds("grace_period", s.cfg.GracePeriod))
	s.kill()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return true
}

func (s *Sequence) kill() {
	s.enter(StepKill)
	if err := s.proc.Kill(); err != nil {
		s.logger.Warn("kill process group", zap.Error(err))
	}
}

func (s *Sequence) enter(step string) {
	s.logger.Debug("stop sequence step", zap.String("step", step))
	s.onPhase(step)
}

// timed runs one step and records how long it took.
func (s *Sequence) timed(step string, f func()) {
	s.enter(step)
	start := time.Now()
	f()
	s.metrics.setStep(step, time.Since(start))
}
