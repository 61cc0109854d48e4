package drain

import (
	"context"
	"errors"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/hooks"
	"github.com/lifecycled/lifecycled/internal/ctxtime"
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
	defaultPollConns = 100 * time.Millisecond
	defaultProcRoot  = "/proc"
)

// connsLogEvery spaces out the "still waiting for connections" lines.
const connsLogEvery = 5 * time.Second

// Config is the stop sequence's configuration. A zero duration means no
// wait (GracePeriod 0: SIGKILL right after the stop signal, as a Kubernetes
// grace period of 0); a zero signal is SIGTERM, zero PollConns and ProcRoot
// take the defaults above, and a zero DrainPort turns the connection drain
// off.
type Config struct {
	// KeepReady (--drain-readiness keep) leaves /readyz passing while the
	// sequence drains. Kubernetes already takes a terminating pod out of
	// its Services' ready endpoints; a readiness that stays up keeps the
	// EndpointSlice condition serving=true, which is what kube-proxy falls
	// back to when every endpoint of a Service (or, with
	// externalTrafficPolicy: Local, of a node) is terminating (KEP-1669).
	KeepReady bool
	// DrainDelay (--drain-delay) gives endpoints and iptables rules time
	// to drop the pod before the app stops taking connections. With
	// DrainQuiet it is the ceiling of the adaptive drain.
	DrainDelay time.Duration
	// DrainQuiet (--drain-quiet), if more than 0, makes the drain delay
	// adaptive: it ends once neither a new connection to QuietPorts nor a
	// request byte on one already open has arrived for DrainQuiet, and at
	// least DrainMin after it began.
	DrainQuiet time.Duration
	// DrainMin (--drain-min) is the least the adaptive drain waits.
	DrainMin time.Duration
	// QuietPorts are the app's ports the adaptive drain watches.
	QuietPorts []int
	// ConnectionsOnly makes the adaptive drain count new connections
	// alone, as it did before it counted request bytes: a pooled
	// client's requests on an open connection do not keep it going. It
	// is not a setting; it is there to compare the two (see
	// connectionsOnlyBuild).
	ConnectionsOnly bool
	// Own records lifecycled's own connections to the app (its probes),
	// which the adaptive drain does not count; nil if none are recorded.
	Own *Dials
	// DrainPort (--drain-connections) is the local port whose established
	// connections are waited for; 0 turns this step off.
	DrainPort int
	// DrainTimeout (--drain-timeout) bounds the wait for connections.
	DrainTimeout time.Duration
	// PollConns is how often connections are counted.
	PollConns time.Duration
	// PreStop is the preStop hook, nil if none.
	PreStop *hooks.Hook
	// StopSignal (--stop-signal) is sent when draining is over.
	StopSignal syscall.Signal
	// GracePeriod (--grace-period) is the most the child gets between the
	// stop signal and SIGKILL.
	GracePeriod time.Duration
	// ProcRoot is where /proc is mounted, for counting connections.
	ProcRoot string
	// TerminationGracePeriod (--termination-grace-period) is the pod's,
	// for the Report's share of it; 0 if unknown.
	TerminationGracePeriod time.Duration
}

// Sequence is the stop sequence of contract section 5, run once per
// container stop.
type Sequence struct {
	cfg     Config
	proc    Process
	runner  *hooks.Runner
	logger  *zap.Logger
	metrics *Metrics
	onPhase func(step string)

	// start is when Run began: the stop's start, from which the report
	// counts. track watches the app's ports for the report and the
	// adaptive drain, nil if there are none or they cannot be watched
	// (watchErr says why).
	start    time.Time
	track    *tracker
	watchErr error
	report   Report
}

// NewSequence returns a Sequence over proc. runner may be nil when there is
// no preStop hook; m may be nil. onPhase, if not nil, is called
// synchronously as each step begins (the Step constants) and must return
// quickly. StepDraining comes first, at once, unless proc is already done:
// the lifecycle fails readiness and writes the tombstone just before Run.
func NewSequence(cfg Config, proc Process, runner *hooks.Runner, logger *zap.Logger, m *Metrics, onPhase func(step string)) *Sequence {
	if cfg.PollConns <= 0 {
		cfg.PollConns = defaultPollConns
	}
	if cfg.StopSignal == 0 {
		cfg.StopSignal = syscall.SIGTERM
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = defaultProcRoot
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if onPhase == nil {
		onPhase = func(string) {}
	}
	if runner == nil {
		runner = hooks.NewRunner(nil, logger, nil, nil, "")
	}
	return &Sequence{cfg: cfg, proc: proc, runner: runner, logger: logger, metrics: m, onPhase: onPhase}
}

// Run stops the child: readiness off, drain delay, connection drain,
// preStop, stop signal, and SIGKILL to the group once the grace period is
// over. It returns as soon as proc is done, so the grace period is a
// ceiling, and reports whether SIGKILL was needed; Report then says what
// the stop saw.
//
// Closing (or sending on) skip, on a second SIGTERM or SIGINT, cuts short
// whatever is left of the drain and preStop and goes straight to the stop
// signal. If the child exits before the stop signal, the sequence ends
// there. Nothing else cuts it short (see supervisor.Terminate): an internal
// error asks for a stop, and this is that stop.
func (s *Sequence) Run(skip <-chan struct{}) (killed bool) {
	s.start = time.Now()
	s.report = newReport(s.cfg.QuietPorts, s.cfg.TerminationGracePeriod)
	defer func() { s.finish(killed) }()
	done := s.proc.Done()
	select {
	case <-done:
		return false
	default:
	}

	s.watch()
	s.enter(StepDraining)
	s.prepare(skip)
	s.track.background()

	select {
	case <-done:
		s.logger.Info("child exited while draining; stop sequence ends")
		return false
	case <-s.proc.Exited():
		// Done is closed before Exited when the child was alone in its
		// group; otherwise what it left still gets the stop signal and
		// the grace period, as after any exit of the child.
		select {
		case <-done:
			s.logger.Info("child exited while draining; stop sequence ends")
			return false
		default:
		}
		s.logger.Info("child exited while draining; stopping what is left of its process group")
	default:
	}
	return s.stop()
}

// prepare runs steps 2–4 (drain delay, connection drain, preStop) under a
// context that ends on skip or on the child's exit.
func (s *Sequence) prepare(skip <-chan struct{}) {
	// The cause is the reason a cut-short preStop is logged with.
	prepCtx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		select {
		case <-skip:
			s.logger.Info("second stop signal: skipping the rest of the drain and preStop")
			cancel(errors.New("second stop signal"))
		case <-s.proc.Exited():
			cancel(errors.New("the child exited"))
		case <-prepCtx.Done():
		}
	}()

	if s.cfg.DrainQuiet <= 0 {
		// A fixed drain: the report watches from the start.
		s.track.background()
	}
	if s.cfg.DrainDelay > 0 && prepCtx.Err() == nil {
		s.timed(StepDrainDelay, func() { s.drainDelay(prepCtx) })
	}
	s.track.background()
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

// drainDelay waits DrainDelay or, in adaptive mode, until traffic to the
// app's ports has stopped (see waitQuiet).
func (s *Sequence) drainDelay(ctx context.Context) {
	if s.cfg.DrainQuiet <= 0 {
		s.logger.Info("drain delay", logschema.Seconds("delay", s.cfg.DrainDelay))
		_ = ctxtime.Sleep(ctx, s.cfg.DrainDelay)
		return
	}
	start := time.Now()
	if s.track == nil {
		s.logger.Warn("cannot watch new connections, waiting the whole drain delay", zap.Error(s.watchErr))
		_ = ctxtime.Sleep(ctx, s.cfg.DrainDelay)
		return
	}
	if !s.track.w.Exact() {
		s.logger.Warn("the kernel does not report closed sockets: a connection that opens and closes between two looks may be missed")
	}
	what := "new connections and request bytes"
	if s.connectionsOnly() {
		what = "new connections"
	}
	s.logger.Info("adaptive drain: waiting for "+what+" to stop", zap.Ints("ports", s.cfg.QuietPorts),
		logschema.Seconds("quiet", s.cfg.DrainQuiet), logschema.Seconds("min", s.cfg.DrainMin), logschema.Seconds("max", s.cfg.DrainDelay))
	s.waitQuiet(ctx, start, s.track.poll)
}

// watch starts watching the app's ports for the report (and the adaptive
// drain) if there are any.
func (s *Sequence) watch() {
	if len(s.cfg.QuietPorts) == 0 {
		return
	}
	w, err := WatchArrivals(s.cfg.QuietPorts, s.cfg.Own)
	if err != nil {
		s.watchErr = err
		if s.cfg.DrainQuiet <= 0 { // the adaptive drain says it itself
			s.logger.Warn("drain report: cannot watch the app's ports", zap.Error(err))
		}
		return
	}
	s.track = &tracker{start: s.start, every: s.cfg.PollConns, w: w, report: newReport(nil, 0)}
}

// finish completes the report once the stop is over.
func (s *Sequence) finish(killed bool) {
	r := &s.report
	r.Took = time.Since(s.start)
	r.Killed = killed
	if s.track != nil {
		seen := s.track.end()
		r.Watched = true
		r.Arrivals, r.RequestBytes, r.LastArrival, r.LastRequestByte = seen.Arrivals, seen.RequestBytes, seen.LastArrival, seen.LastRequestByte
		if !killed {
			r.OpenAtKill = 0
		}
	}
	s.metrics.setReport(*r)
}

// Report is what the stop saw; complete once Run has returned.
func (s *Sequence) Report() Report { return s.report }

func (s *Sequence) connectionsOnly() bool { return s.cfg.ConnectionsOnly || connectionsOnlyBuild }

// drainSeen is what the adaptive drain saw, for its last line.
type drainSeen struct {
	start                   time.Time
	arrivals                int
	bytes                   uint64
	lastArrival, lastByte   time.Time // zero: none
	noBytes, countingFailed bool
}

func (d drainSeen) fields(now time.Time) []zap.Field {
	since := func(key string, t time.Time) zap.Field {
		if t.IsZero() {
			return zap.Skip()
		}
		return logschema.Seconds(key, t.Sub(d.start))
	}
	return []zap.Field{zap.Int("arrivals", d.arrivals), zap.Uint64("request_bytes", d.bytes),
		since("last_arrival_after", d.lastArrival), since("last_request_byte_after", d.lastByte),
		logschema.Seconds("took", now.Sub(d.start))}
}

// waitQuiet polls for traffic until none has arrived for DrainQuiet and
// DrainMin has passed since start, at most DrainDelay. After readiness
// fails, connections keep arriving until the last proxy has dropped the
// pod, and requests keep coming on the connections it pooled until it
// stops using them: their end is what the fixed delay guesses. A poll that
// fails counts as traffic, so an unknown never shortens the drain. The
// quiet period runs from the poll that saw the traffic, a little after it
// arrived: never shorter than asked.
func (s *Sequence) waitQuiet(ctx context.Context, start time.Time, poll func() (Traffic, error)) {
	ceiling := time.NewTimer(s.cfg.DrainDelay - time.Since(start))
	defer ceiling.Stop()
	tick := time.NewTicker(s.cfg.PollConns)
	defer tick.Stop()
	seen := drainSeen{start: start}
	last := start
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ceiling.C:
			s.logger.Info("adaptive drain: drain delay reached, traffic still arriving", seen.fields(now)...)
			return
		case now := <-tick.C:
			t, err := poll()
			if err != nil && lastErr == nil {
				s.logger.Warn("adaptive drain: cannot count new connections; counting that as traffic", zap.Error(err))
			}
			lastErr = err
			if t.NoBytes && !seen.noBytes && !s.connectionsOnly() {
				s.logger.Warn("adaptive drain: the kernel does not count received bytes (Linux 4.1 or later does): only new connections are seen")
			}
			seen.noBytes = seen.noBytes || t.NoBytes
			if t.Arrivals > 0 {
				seen.arrivals += t.Arrivals
				seen.lastArrival = now
			}
			if t.Bytes > 0 {
				seen.bytes += t.Bytes
				seen.lastByte = t.LastByte
			}
			if err != nil || t.Arrivals > 0 || (t.Bytes > 0 && !s.connectionsOnly()) {
				last = now
			}
			if now.Sub(start) >= s.cfg.DrainMin && now.Sub(last) >= s.cfg.DrainQuiet {
				msg := "adaptive drain: no new connection or request byte for the quiet period"
				if s.connectionsOnly() {
					msg = "adaptive drain: no new connection for the quiet period"
				}
				s.logger.Info(msg, seen.fields(now)...)
				return
			}
		}
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
		n, err := establishedConns(s.cfg.ProcRoot, port)
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
// runs out, whichever comes first of that and the group being gone
// (supervisor.Terminate). Its lines are logged after the signals: nothing
// sits between the decision and the signal.
func (s *Sequence) stop() (killed bool) {
	s.enter(StepGrace)
	s.logger.Info("sending stop signal",
		zap.String("signal", supervisor.SignalName(s.cfg.StopSignal)), logschema.Seconds("grace_period", s.cfg.GracePeriod))
	// Counted just before the signal: a dump of the app's sockets takes
	// well under a millisecond for a few hundred connections.
	s.report.StopSignalAt, s.report.OpenAtStopSignal = time.Since(s.start), s.track.open()
	s.metrics.setOpenAtStopSignal(s.report.OpenAtStopSignal)
	t := supervisor.TerminateWith(s.proc, s.cfg.StopSignal, s.cfg.GracePeriod, func() { s.report.OpenAtKill = s.track.open() })
	s.metrics.setStep(StepGrace, t.Grace)
	if t.SignalErr != nil {
		// Usually the child exited a moment ago.
		s.logger.Warn("send stop signal", zap.String("signal", supervisor.SignalName(s.cfg.StopSignal)), zap.Error(t.SignalErr))
	}
	if !t.Killed {
		return false
	}
	s.enter(StepKill)
	s.logger.Warn("grace period over, killed the process group", logschema.Seconds("grace_period", s.cfg.GracePeriod))
	if t.KillErr != nil {
		s.logger.Warn("kill process group", zap.Error(t.KillErr))
	}
	return true
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
