package lifecycle

import (
	"context"

	"github.com/lifecycled/lifecycled/probes"
)

// checkLiveness is the /livez check that --live feeds.
const checkLiveness = "liveness-probe"

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
