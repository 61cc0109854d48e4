package integration

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/integration/lbsim"
	"github.com/lifecycled/lifecycled/internal/proctest"
)

// TestZeroDowntimeTrafficShapes runs the rolling stop of
// TestZeroDowntimeRollingStop for each shape of traffic a pod sees, under
// three drains of lifecycled, in one run:
//
//   - fixed: --drain-delay 5s;
//   - connections: --drain-quiet 1s --drain-delay 6s, counting new
//     connections only (the drain before it counted request bytes, from a
//     binary built with the lifecycled_drain_connections_only tag);
//   - requests: the same flags, counting request bytes on open
//     connections too (lifecycled as shipped), and --drain-min 3s, the
//     propagation, as the README advises where a pod's traffic can be
//     sparse: Go's default pool, whose few pooled connections may all be
//     on the other backend for a while, sent the old one nothing for 1 s
//     (+0.42 to +1.43 s) while it was still in rotation in one loaded run,
//     so the drain ended on quiet and the requests that came after met a
//     closed app.
//
// The shapes, with a propagation of 3 s: a new connection per request and
// an L7 proxy pooling its upstream connections, whose traffic to the old
// pod stops once the balancer drops it; Go's default keep-alive pool (8
// callers, at most 2 idle connections kept: it keeps opening new ones),
// whose traffic stops in some runs and in others stays on a busy pooled
// connection; and, straight through the L4 balancer as through a ClusterIP, clients
// that each keep one connection and an HTTP/2 client on one connection,
// whose connections stay on the old pod until the app closes them, so the
// traffic never stops by itself.
//
// The request-aware drain loses no request in any shape. Where the traffic
// stops, it ends after the last request byte the balancer sent to the old
// pod, within the quiet period and 0.3 s of it. Where it does not, it
// waits its ceiling rather than cut requests. The connection-only drain,
// behind the L7 proxy, ends while the proxy still sends the pod requests
// on its pooled connections: the case this test would fail on before.
func TestZeroDowntimeTrafficShapes(t *testing.T) {
	backend := zdBackend(t)
	connOnly := zdConnectionsOnlyBin(t)
	ctx := testContext(t, 8*time.Minute)
	const (
		quiet       = time.Second
		fixed       = 5 * time.Second
		ceiling     = 6 * time.Second
		propagation = 3 * time.Second
		slack       = 300 * time.Millisecond
	)
	shapes := []struct {
		name  string
		stops stops // whether the traffic to the old pod stops by itself
		rs    lbsim.RollingStop
	}{
		{"new connection per request", stopsYes, lbsim.RollingStop{NewConnWorkers: 8}},
		{"L7 proxy, pooled upstream", stopsYes, lbsim.RollingStop{PooledWorkers: 8, L7: true}},
		// Whether one of its pooled connections stays on the old pod
		// after the balancer dropped it depends on the run: both
		// happened (last request byte at +3.1 s and at +5.6 s).
		{"Go's default pool, 8 callers", stopsMaybe, lbsim.RollingStop{PooledWorkers: 8}},
		{"keep-alive, a connection per client", stopsNo, lbsim.RollingStop{KeepAliveWorkers: 8}},
		{"HTTP/2, one connection (h2c)", stopsNo, lbsim.RollingStop{H2Workers: 8}},
	}
	drains := []struct {
		name              string
		bin               string
		delay, quiet, min time.Duration
	}{
		{"fixed 5s", lifecycledBin(t), fixed, 0, 0},
		{"connections", connOnly, ceiling, quiet, 0},
		{"requests", lifecycledBin(t), ceiling, quiet, propagation},
	}
	var table []string
	for _, shape := range shapes {
		for _, d := range drains {
			t.Run(shape.name+"/"+d.name, func(t *testing.T) {
				var log proctest.SyncBuffer
				rs := shape.rs
				rs.Init, rs.InitPath, rs.Backend, rs.Stderr, rs.Env = lbsim.InitLifecycled, d.bin, backend, &log, zdEnv
				rs.DrainDelay, rs.DrainQuiet, rs.DrainMin, rs.Propagation = d.delay, d.quiet, d.min, propagation
				r, err := rs.Run(ctx)
				require.NoError(t, err, "run; lifecycled's log:\n%s", log.String())
				zdLogRun(t, d.name, r)
				drop, _ := zdDropped(r, "a")
				table = append(table, fmt.Sprintf("| %s | %s | %d / %d | %s | %s | %s |", shape.name, d.name,
					r.Load.Failed, r.Load.OK+r.Load.Failed, zdSeconds(drop), zdSeconds(r.LastSent), zdSeconds(r.TermAfter)))
				assert.Greater(t, r.Load.OK, int64(300), "the load ran: %s", r.Load)
				assert.Positive(t, r.Served, "the stopped backend served requests before the stop")
				if d.name != "requests" {
					if d.name == "connections" && shape.rs.L7 {
						assert.Less(t, r.TermAfter, drop,
							"counting connections only, the drain ends while the proxy still sends the pod requests on its pooled connections")
					}
					return
				}
				assert.Zero(t, r.Load.Failed, "failed requests: %s, e.g. %q", r.Load, r.Load.Samples)
				onQuiet := strings.Contains(log.String(), "no new connection or request byte for the quiet period")
				if shape.stops == stopsYes || shape.stops == stopsMaybe && onQuiet {
					assert.True(t, onQuiet, "the drain ended on quiet")
					assert.Less(t, r.LastSent, r.TermAfter, "the drain ended after the last request byte sent to the old pod")
					assert.Less(t, r.TermAfter, r.LastSent+quiet+slack, "the drain ended within the quiet period + %s of the last request byte", slack)
				} else {
					assert.Contains(t, log.String(), "drain delay reached, traffic still arriving", "the drain waited its ceiling")
					assert.GreaterOrEqual(t, r.TermAfter, ceiling, "the app got SIGTERM at the ceiling, not while its pooled clients still sent")
				}
			})
		}
	}
	t.Logf("\n| clients | drain | failed / requests | old pod dropped | last request byte to it | app's SIGTERM |\n|---|---|---|---|---|---|\n%s",
		strings.Join(table, "\n"))
}

// stops says whether a shape's traffic to the old pod stops by itself once
// the balancer has dropped it.
type stops int

const (
	stopsNo stops = iota
	stopsYes
	stopsMaybe
)

func zdSeconds(d time.Duration) string { return fmt.Sprintf("%+.2f s", d.Seconds()) }

var zdConnOnlyOnce builtOnce

// zdConnectionsOnlyBin builds lifecycled with the adaptive drain counting
// new connections only (drain.Config.ConnectionsOnly, no flag), once.
func zdConnectionsOnlyBin(t *testing.T) string {
	return zdConnOnlyOnce.get(t, 5*time.Minute, func(ctx context.Context) (string, error) {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		path := filepath.Join(binDir, "lifecycled-connections-only")
		args := []string{"build", "-tags", "lifecycled_drain_connections_only", "-o", path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/lifecycled")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build: %w\n%s", err, out)
		}
		return path, nil
	})
}
