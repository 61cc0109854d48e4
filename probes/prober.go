package probes

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/internal/ctxtime"
)

// ProbeSpec is a readiness or liveness probe, as a Kubernetes Probe. Zero
// durations and thresholds take the defaults of CONTRACT section 4.
type ProbeSpec struct {
	// Target is what is checked.
	Target Target
	// InitialDelay passes before the first probe (default 0).
	InitialDelay time.Duration
	// Period is the time between the starts of two probes (default 1s).
	Period time.Duration
	// Timeout bounds each probe; a probe that runs over fails (default 1s).
	Timeout time.Duration
	// SuccessThreshold is how many consecutive successes make a not-ready
	// target ready (default 1).
	SuccessThreshold int
	// FailureThreshold is how many consecutive failures make a ready target
	// not ready (default 3).
	FailureThreshold int
	// Liveness makes it a liveness probe: passing until FailureThreshold
	// consecutive failures, as the kubelet starts a liveness probe at
	// Success and a readiness probe at Failure (SuccessThreshold must then
	// be 1, as the API server requires).
	Liveness bool
}

// Prober runs a probe with the kubelet's semantics: not ready until
// SuccessThreshold consecutive successes; once ready, not ready after
// FailureThreshold consecutive failures; a result that does not reach its
// threshold leaves readiness as it was. It is an actor: NewProber starts
// nothing, Run loops until its context ends.
type Prober struct {
	spec     ProbeSpec
	opts     Options
	logger   *zap.Logger
	metrics  *Metrics
	onChange func(ready bool, reason string)

	mu     sync.Mutex
	ready  bool   // guarded by mu
	reason string // guarded by mu
}

// NewProber returns a Prober for spec. logger, m and onChange may be nil.
// onChange is called from Run's goroutine, one call at a time, whenever
// readiness or the reason for it changes, and once at the start of Run: that
// is what feeds the "readiness-probe" check of health.Checks, whose /readyz?verbose shows the
// reason.
func NewProber(spec ProbeSpec, opts Options, logger *zap.Logger, m *Metrics, onChange func(ready bool, reason string)) *Prober {
	if spec.Period <= 0 {
		spec.Period = time.Second
	}
	if spec.Timeout <= 0 {
		spec.Timeout = time.Second
	}
	if spec.SuccessThreshold <= 0 {
		spec.SuccessThreshold = 1
	}
	if spec.FailureThreshold <= 0 {
		spec.FailureThreshold = 3
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if onChange == nil {
		onChange = func(bool, string) {}
	}
	kind, reason := "readiness", "not probed yet"
	if spec.Liveness {
		kind, reason = "liveness", ""
	}
	return &Prober{
		spec:     spec,
		opts:     opts,
		logger:   logger.With(zap.String("probe", kind), zap.Stringer("target", spec.Target)),
		metrics:  m,
		onChange: onChange,
		ready:    spec.Liveness,
		reason:   reason,
	}
}

// state reports whether the target is ready and, when it is not, why.
func (p *Prober) state() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready, p.reason
}

// Run probes every Period after InitialDelay until ctx is done, then returns
// nil: stopping is the only way out and is not an error.
func (p *Prober) Run(ctx context.Context) error {
	ready, reason := p.state()
	if p.spec.InitialDelay > 0 && !ready {
		reason = fmt.Sprintf("initial delay of %s", p.spec.InitialDelay)
	}
	p.set(ready, reason)
	p.onChange(ready, reason)

	if p.spec.InitialDelay > 0 {
		if ctxtime.Sleep(ctx, p.spec.InitialDelay) != nil {
			return nil
		}
	}

	// A ticker, not a sleep after each probe, so the period is from start to
	// start and slow probes do not make it drift; ticks missed while a slow
	// probe runs are dropped, so probes never pile up.
	ticker := time.NewTicker(p.spec.Period)
	defer ticker.Stop()
	var (
		lastOK bool
		run    int // consecutive results equal to lastOK
	)
	for {
		err := p.probe(ctx)
		if ctx.Err() != nil {
			return nil // the probe was cut short by shutdown, not by the target
		}
		ok := err == nil
		p.metrics.countProbe(ok)
		if run > 0 && ok == lastOK {
			run++
		} else {
			lastOK, run = ok, 1
		}
		p.update(ok, run, err)

		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// probe checks the target once, bounded by Timeout.
func (p *Prober) probe(ctx context.Context) error {
	probeCtx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	defer cancel()
	err := Check(probeCtx, p.spec.Target, p.opts)
	if err != nil && expired(probeCtx) && ctx.Err() == nil {
		return fmt.Errorf("probe timed out after %s: %w", p.spec.Timeout, err)
	}
	return err
}

// update applies one result, the run-th equal one in a row, as the kubelet's
// probe worker does.
func (p *Prober) update(ok bool, run int, err error) {
	wasReady, oldReason := p.state()
	ready, reason := wasReady, oldReason
	switch {
	case ok && run >= p.spec.SuccessThreshold:
		ready, reason = true, ""
	case ok && !wasReady:
		reason = fmt.Sprintf("%d of %d consecutive successes", run, p.spec.SuccessThreshold)
	case !ok && run >= p.spec.FailureThreshold:
		ready, reason = false, err.Error()
	case !ok && !wasReady:
		reason = err.Error()
	}
	if ok {
		p.logger.Debug("probe succeeded", zap.Int("consecutive", run))
	} else {
		p.logger.Debug("probe failed", zap.Int("consecutive", run), zap.Error(err))
	}
	if ready == wasReady && reason == oldReason {
		return
	}
	p.set(ready, reason)
	if ready != wasReady {
		if ready {
			p.logger.Info("probe passing")
		} else {
			p.logger.Info("probe failing", zap.String("reason", reason))
		}
	}
	p.onChange(ready, reason)
}

// set records the state under the lock, for state.
func (p *Prober) set(ready bool, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ready, p.reason = ready, reason
}
