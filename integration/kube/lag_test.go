//go:build kube

package kube

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
)

// extraNodeTaint keeps the other tests' pods on node 1, as on a one-node
// cluster (their hostPath marks, NodePorts with externalTrafficPolicy:
// Local and the full-node case assume it); TestKubeProxyLag's pods
// tolerate it.
const extraNodeTaint = "lifecycled-kube/extra-node"

// taintExtraNodes taints nodes 2 and up with extraNodeTaint.
func taintExtraNodes(ctx context.Context) error {
	for _, n := range kc.Nodes()[1:] {
		if _, errs, err := kubectlRun(ctx, nil, "taint", "nodes", n.Name, extraNodeTaint+"=true:NoSchedule", "--overwrite"); err != nil {
			return fmt.Errorf("taint %s: %v: %s", n.Name, err, errs)
		}
	}
	return nil
}

// The lag TestKubeProxyLag gives node 2's kube-proxy, and the adaptive
// drain's quiet period.
const (
	proxyLag   = 3 * time.Second
	drainQuiet = time.Second
)

var (
	withLifecycled2s = variant{key: "lifecycled-2s", name: "lifecycled `--drain-delay 2s`",
		container: lifecycledContainer("--drain-delay", "2s")}
	withTiniSleep2 = variant{key: "tini-prestop-sleep-2", name: "tini + `preStop: sleep 2`", container: func(c *corev1.Container) {
		withTini.container(c)
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "2"}}}}
	}}
)

// TestKubeProxyLag shows what each drain does when one node's kube-proxy
// learns of a terminating pod late, as a busy, rate-limited or far node's
// does in a real cluster. On one machine every kube-proxy gets the watch
// event at the same moment and syncs in step, so the lag is made, as in a
// chaos test: node 2's kube-proxy is stopped (SIGSTOP) while each old pod
// is deleted and goes on (SIGCONT) 3 s after (lagger).
//
// A Deployment of 3 replicas spread over the 3 nodes behind a ClusterIP
// Service is restarted (`kubectl rollout restart`, maxSurge 1,
// maxUnavailable 0, minReadySeconds 5 so that each old pod's deletion
// comes well after the new pod's Ready, when the proxy is already
// stopped) while new-connection clients in each node's network namespace
// send requests through the Service IP: each node's iptables rules route
// them. The same run for four stops: tini + `preStop: sleep 2`, lifecycled
// `--drain-delay 2s`, `--drain-delay 5s`, and the adaptive drain
// (`--drain-quiet 1s --drain-min 1s --drain-delay 10s`, which counts new
// connections). The 2 s stops must lose requests through node 2 (its
// rules still send new connections to the old pod after the app has
// closed its listener); the 5 s and the adaptive drains none; and each
// adaptive drain ends within its quiet period + 0.3 s of the last request
// that reached the pod through node 2, not at its 10 s ceiling. Each
// node's kube-proxy metrics (network programming latency, rule syncs) go
// in the table with the failures.
func TestKubeProxyLag(t *testing.T) {
	nodes := kc.Nodes()
	if len(nodes) < 3 {
		t.Skipf("needs 3 nodes, the cluster has %d (KUBE_NODES=3, or make kube-up NODES=3 with KUBE_REUSE=1)", len(nodes))
	}
	nodes = nodes[:3]
	lagging := nodes[1]
	ctx := testContext(t, 15*time.Minute)
	variants := []variant{withTiniSleep2, withLifecycled2s, withLifecycled, withLifecycledAdaptive}
	var rows []lagResult
	for _, v := range variants {
		t.Run(v.key, func(t *testing.T) {
			ns := namespace(t)
			d := appDeployment("app", 3, v)
			d.Spec.MinReadySeconds = 5
			// What is measured is the drain of deleted pods, whose
			// endpoints terminate whatever their readiness: a probe that
			// a CPU-starved machine fails once must not take a pod out
			// of the rules in the middle of the measurement.
			probe := d.Spec.Template.Spec.Containers[0].ReadinessProbe
			probe.FailureThreshold, probe.TimeoutSeconds = 3, 3
			d.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: extraNodeTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
			d.Spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}},
			}}
			applyObjects(t, ctx, ns, appService("app", 80, "http"), d)
			r := rolloutWithLag(t, ctx, ns, serviceIP(t, ctx, ns, "app"), nodes, lagging)
			r.variant = v
			rows = append(rows, r)
			t.Logf("%s: %s", v.name, r)

			require.Empty(t, r.unlagged, "old pods deleted while %s's kube-proxy ran: the run measured no lag for them", lagging.Name)
			require.Len(t, r.deleted, 3)
			for i, n := range nodes {
				assert.Greater(t, r.load[i].OK, int64(150), "too few requests through %s to mean anything", n.Name)
			}
			switch v.key {
			case withTiniSleep2.key, withLifecycled2s.key:
				assert.Positive(t, r.load[1].Failed, "a 2 s stop lost no request through the lagging node")
			default:
				for i, n := range nodes {
					assert.Zero(t, r.load[i].Failed, "failed requests through %s: %s", n.Name, r.load[i])
				}
				// The lag is real: node 2 kept sending new connections
				// to each old pod for most of the 3 s.
				for p, del := range r.deleted {
					last, ok := r.last[1][p]
					if assert.True(t, ok, "no request through %s reached %s", lagging.Name, p) {
						assert.Greater(t, last.Sub(del), proxyLag-time.Second, "last request through %s to %s after its deletion", lagging.Name, p)
					}
				}
			}
			if v.key != withLifecycledAdaptive.key {
				return
			}
			require.Len(t, r.drains, 3, "a drain in the logs of every old pod")
			for _, d := range r.drains {
				assert.False(t, d.ceiling, "adaptive drain of %s ran into --drain-delay: %s", d.pod, d)
				after := d.stopAt.Add(d.took).Sub(r.last[1][d.pod])
				assert.GreaterOrEqual(t, after, drainQuiet-100*time.Millisecond, "drain of %s ended %s after the last request through %s", d.pod, after, lagging.Name)
				// The goal is quiet + 0.3 s (1.01-1.21 s measured, in the
				// README's table); the bound holds a loaded CI machine
				// (1.52 s seen once with the other tests' build beside
				// it) and is still far from the 10 s ceiling, which is
				// what a drain that did not see the lag would wait.
				assert.LessOrEqual(t, after, drainQuiet+time.Second, "drain of %s ended %s after the last request through %s", d.pod, after, lagging.Name)
			}
		})
	}
	t.Log(lagTable(nodes, rows))
}

// lagResult is one variant's run.
type lagResult struct {
	variant variant
	load    []loadResult // by node
	// last is, by node, the start of the last request through it that
	// each pod answered.
	last []map[string]time.Time
	// deleted: when each old pod's deletion was seen; unlagged: old pods
	// deleted while the lagging proxy ran.
	deleted  map[string]time.Time
	unlagged []string
	drains   []podDrain
	// proxy is each node's kube-proxy metrics over the run.
	proxy []proxyMetrics
}

func (r lagResult) String() string {
	var b strings.Builder
	for i, l := range r.load {
		fmt.Fprintf(&b, "node %d: %s, lag %s; ", i+1, l, r.lag(i))
	}
	fmt.Fprintf(&b, "drains %v", r.drains)
	return b.String()
}

// lag is, over the old pods, the longest time node i sent a request to a
// pod after its deletion (the last answered one: a refused connection
// names no pod).
func (r lagResult) lag(i int) time.Duration {
	var max time.Duration
	for p, del := range r.deleted {
		if last, ok := r.last[i][p]; ok && last.Sub(del) > max {
			max = last.Sub(del)
		}
	}
	return max
}

// rolloutWithLag restarts deployment app in ns while clients in each
// node's network namespace send requests to the Service at ip, with the
// lagging node's kube-proxy stopped around each old pod's deletion.
func rolloutWithLag(t *testing.T, ctx context.Context, ns, ip string, nodes []cluster.Node, lagging cluster.Node) lagResult {
	t.Helper()
	kubectl(t, ctx, "rollout", "status", "-n", ns, "deployment/app", "--timeout=3m")
	url := "http://" + ip + "/"
	for _, n := range nodes {
		waitAnswers(t, ctx, cluster.NetNSPath(n.NetNS), url, 10)
	}
	old := map[string]bool{}
	on := map[string]bool{}
	for _, p := range pods(t, ctx, ns, "app=app") {
		old[p.Name] = true
		on[p.Spec.NodeName] = true
	}
	require.Len(t, old, 3)
	require.Len(t, on, 3, "the pods are spread over the 3 nodes")
	var follows []func() (podDrain, bool)
	for p := range old {
		follows = append(follows, followDrain(ctx, ns, p))
	}

	before := scrapeAll(t, ctx, nodes)
	var loads []*hostLoad
	var lagLoad *hostLoad
	for _, n := range nodes {
		l := startHostLoad(cluster.NetNSPath(n.NetNS), url, 2)
		loads = append(loads, l)
		if n == lagging {
			lagLoad = l
		}
	}
	lg := startLagger(ctx, t, ns, kc.NodePIDs(lagging)["kube-proxy"], lagging, lagLoad, old)
	time.Sleep(2 * time.Second) // a baseline before the restart
	kubectl(t, ctx, "rollout", "restart", "-n", ns, "deployment/app")
	if _, errs, err := kubectlRun(ctx, nil, "rollout", "status", "-n", ns, "deployment/app", "--timeout=4m"); err != nil {
		lg.stop()
		for _, l := range loads {
			l.stop()
		}
		t.Fatalf("rollout status: %v: %s", err, errs)
	}
	eventually(t, ctx, "the old pods to be gone", func() bool {
		for _, p := range pods(t, ctx, ns, "app=app") {
			if old[p.Name] {
				return false
			}
		}
		return true
	})
	// The last pod's lag runs its course while the clients go on.
	select {
	case <-lg.released:
	case <-lg.done: // it failed the test
	case <-ctx.Done():
	}
	time.Sleep(time.Second)
	r := lagResult{}
	r.deleted, r.unlagged = lg.stop()
	for _, l := range loads {
		nl, last := l.stop()
		r.load = append(r.load, nl)
		r.last = append(r.last, last)
	}
	after := scrapeAll(t, ctx, nodes)
	for i := range nodes {
		r.proxy = append(r.proxy, after[i].sub(before[i]))
	}
	for _, wait := range follows {
		if d, ok := wait(); ok {
			r.drains = append(r.drains, d)
		}
	}
	sort.Slice(r.drains, func(i, j int) bool { return r.drains[i].stopAt.Before(r.drains[j].stopAt) })
	return r
}

// hostLoad is a set of new-connection clients in one network namespace,
// each sending a request every 20 ms, which record the pod that answered
// each (the backend's Backend-Host header).
type hostLoad struct {
	wg   sync.WaitGroup
	done chan struct{}
	mu   sync.Mutex
	load loadResult
	last map[string]time.Time
	// lastFail is the start of the last failed request.
	lastFail time.Time
}

func startHostLoad(nsPath, url string, clients int) *hostLoad {
	l := &hostLoad{done: make(chan struct{}), load: loadResult{Errors: map[string]int{}}, last: map[string]time.Time{}}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := nsClient(nsPath, false, 3*time.Second)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-l.done:
					return
				case <-tick.C:
				}
				l.request(c, url)
			}
		}()
	}
	return l
}

func (l *hostLoad) request(c *http.Client, url string) {
	// Not a test context: stopping the load must not fail a request in
	// flight.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		panic(err)
	}
	resp, err := c.Do(req)
	var host, fail string
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		host = resp.Header.Get("Backend-Host")
	}
	switch {
	case err != nil:
		fail = shortErr(err)
	case resp.StatusCode != http.StatusOK:
		fail = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if fail != "" {
		l.load.Failed++
		l.load.Errors[fail]++
		if start.After(l.lastFail) {
			l.lastFail = start
		}
		return
	}
	l.load.OK++
	if start.After(l.last[host]) {
		l.last[host] = start
	}
}

// lastTo is the start of the last request that one of pods answered or
// that failed (a refused connection names no pod).
func (l *hostLoad) lastTo(pods map[string]time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	last := l.lastFail
	for p := range pods {
		if l.last[p].After(last) {
			last = l.last[p]
		}
	}
	return last
}

func (l *hostLoad) stop() (loadResult, map[string]time.Time) {
	close(l.done)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.load, l.last
}

// lagger makes one node's kube-proxy lag behind the others in a rolling
// update, as a busy or rate-limited node's does: it stops the proxy
// (SIGSTOP) once a new pod is Ready, before the Deployment controller
// deletes the old pod it replaces (minReadySeconds later), and lets it go
// on (SIGCONT) proxyLag after that deletion was seen. It stops the proxy
// again for the next pod only once it has caught up: it has synced its
// rules since it went on (its sync timestamp metric), and no request
// through its node has reached a deleted pod, or failed, for caughtUp. (A
// sync that SIGSTOP cut short ends after SIGCONT without the deletion.)
type lagger struct {
	t    *testing.T
	pid  int
	node cluster.Node
	// load is the clients entering through node.
	load   *hostLoad
	old    map[string]bool
	cancel context.CancelFunc
	done   chan struct{}
	// released is closed once every old pod is deleted and the proxy
	// runs again.
	released chan struct{}

	// Owned by run until done is closed.
	deleted  map[string]time.Time
	unlagged []string
}

// caughtUp is how long the lagging node's clients must have reached no
// deleted pod before its proxy is stopped again: at ~100 requests/s, a
// third of them to the pod while the rules still hold it.
const caughtUp = 500 * time.Millisecond

func startLagger(ctx context.Context, t *testing.T, ns string, pid int, node cluster.Node, load *hostLoad, old map[string]bool) *lagger {
	t.Helper()
	require.NotZero(t, pid, "no kube-proxy recorded on %s", node.Name)
	ctx, cancel := context.WithCancel(ctx)
	l := &lagger{t: t, pid: pid, node: node, load: load, old: old, cancel: cancel, done: make(chan struct{}), released: make(chan struct{}), deleted: map[string]time.Time{}}
	cmd := kubectlCmd(ctx, "get", "pods", "-n", ns, "-l", "app=app", "--watch", "--output-watch-events", "-o", "json")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	events := make(chan corev1.Pod)
	go func() {
		defer close(events)
		dec := json.NewDecoder(bufio.NewReader(out))
		for {
			var e struct {
				Type   string
				Object corev1.Pod
			}
			if dec.Decode(&e) != nil {
				_ = cmd.Wait()
				return
			}
			select {
			case events <- e.Object:
			case <-ctx.Done():
			}
		}
	}()
	go l.run(ctx, events)
	// Whatever happens to the test, the proxy must not stay stopped.
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *lagger) run(ctx context.Context, events <-chan corev1.Pod) {
	defer close(l.done)
	stopped := false
	var contAt, wentOn time.Time
	synced := true
	defer func() {
		if stopped {
			_ = syscall.Kill(l.pid, syscall.SIGCONT)
		}
	}()
	current := map[string]corev1.Pod{}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p, ok := <-events:
			if !ok {
				return
			}
			current[p.Name] = p
			if l.old[p.Name] && p.DeletionTimestamp != nil && l.deleted[p.Name].IsZero() {
				now := time.Now()
				l.deleted[p.Name] = now
				if !stopped {
					l.unlagged = append(l.unlagged, p.Name)
				} else if end := now.Add(proxyLag); end.After(contAt) {
					contAt = end
				}
			}
			continue
		case <-tick.C:
		}
		now := time.Now()
		if stopped {
			if !contAt.IsZero() && !now.Before(contAt) {
				if err := syscall.Kill(l.pid, syscall.SIGCONT); err != nil {
					l.t.Errorf("SIGCONT %s's kube-proxy: %v", l.node.Name, err)
					return
				}
				stopped, contAt, wentOn, synced = false, time.Time{}, now, false
			}
			continue
		}
		if len(l.deleted) == len(l.old) {
			select {
			case <-l.released:
			default:
				close(l.released)
			}
			continue
		}
		ready := 0
		for name, p := range current {
			if !l.old[name] && p.DeletionTimestamp == nil && podReady(p) {
				ready++
			}
		}
		if ready <= len(l.deleted) {
			continue
		}
		if !synced {
			m, err := scrapeProxy(ctx, l.node)
			synced = err == nil && m.lastSync >= float64(wentOn.UnixNano())/1e9
			if !synced {
				continue
			}
		}
		if now.Sub(l.load.lastTo(l.deleted)) < caughtUp {
			continue
		}
		if err := syscall.Kill(l.pid, syscall.SIGSTOP); err != nil {
			l.t.Errorf("SIGSTOP %s's kube-proxy: %v", l.node.Name, err)
			return
		}
		stopped = true
	}
}

// stop ends the lagger (the proxy goes on) and returns when each old pod's
// deletion was seen and which were deleted while the proxy ran.
func (l *lagger) stop() (map[string]time.Time, []string) {
	l.cancel()
	<-l.done
	return l.deleted, l.unlagged
}

// proxyMetrics are the kube-proxy metrics the table shows, from its
// /metrics: the network programming latency (from an endpoint's change in
// the API to the node's rules having it) and the rule syncs' durations.
type proxyMetrics struct {
	// prog is the network programming latency histogram: cumulative
	// counts by upper bound.
	prog               map[float64]float64
	progSum, progCount float64
	syncSum, syncCount float64
	// lastSync is the Unix time of the last rule sync.
	lastSync float64
}

// scrapeProxy reads node n's kube-proxy's metrics (127.0.0.1:10249 in the
// node's network namespace).
func scrapeProxy(ctx context.Context, n cluster.Node) (proxyMetrics, error) {
	c := nsClient(cluster.NetNSPath(n.NetNS), false, 3*time.Second)
	code, body, err := httpGet(ctx, c, "http://127.0.0.1:10249/metrics")
	if err != nil {
		return proxyMetrics{}, err
	}
	if code != http.StatusOK {
		return proxyMetrics{}, fmt.Errorf("kube-proxy metrics of %s: HTTP %d", n.Name, code)
	}
	m := proxyMetrics{prog: map[float64]float64{}}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, labels, value, ok := metricLine(line)
		if !ok || (labelValue(labels, "ip_family") != "" && labelValue(labels, "ip_family") != "IPv4") {
			continue
		}
		switch name {
		case "kubeproxy_network_programming_duration_seconds_bucket":
			le, err := strconv.ParseFloat(labelValue(labels, "le"), 64)
			if err != nil {
				le = math.Inf(1)
			}
			m.prog[le] += value
		case "kubeproxy_network_programming_duration_seconds_sum":
			m.progSum += value
		case "kubeproxy_network_programming_duration_seconds_count":
			m.progCount += value
		case "kubeproxy_sync_proxy_rules_duration_seconds_sum":
			m.syncSum += value
		case "kubeproxy_sync_proxy_rules_duration_seconds_count":
			m.syncCount += value
		case "kubeproxy_sync_proxy_rules_last_timestamp_seconds":
			m.lastSync = math.Max(m.lastSync, value)
		}
	}
	return m, nil
}

// metricLine splits a line of the Prometheus text format.
func metricLine(line string) (name, labels string, value float64, ok bool) {
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return "", "", 0, false
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return "", "", 0, false
	}
	name = line[:sp]
	if i := strings.IndexByte(name, '{'); i >= 0 {
		name, labels = name[:i], name[i:]
	}
	return name, labels, v, true
}

func labelValue(labels, key string) string {
	i := strings.Index(labels, key+`="`)
	if i < 0 {
		return ""
	}
	rest := labels[i+len(key)+2:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

func scrapeAll(t *testing.T, ctx context.Context, nodes []cluster.Node) []proxyMetrics {
	t.Helper()
	var ms []proxyMetrics
	for _, n := range nodes {
		m, err := scrapeProxy(ctx, n)
		require.NoError(t, err)
		ms = append(ms, m)
	}
	return ms
}

// sub is m's counts since before.
func (m proxyMetrics) sub(before proxyMetrics) proxyMetrics {
	d := proxyMetrics{prog: map[float64]float64{}, lastSync: m.lastSync,
		progSum: m.progSum - before.progSum, progCount: m.progCount - before.progCount,
		syncSum: m.syncSum - before.syncSum, syncCount: m.syncCount - before.syncCount}
	for le, n := range m.prog {
		d.prog[le] = n - before.prog[le]
	}
	return d
}

// progMax is the upper bound of the bucket of the slowest network
// programming observed.
func (m proxyMetrics) progMax() float64 {
	var les []float64
	for le := range m.prog {
		les = append(les, le)
	}
	sort.Float64s(les)
	for _, le := range les {
		if m.prog[le] >= m.progCount {
			return le
		}
	}
	return math.Inf(1)
}

func (m proxyMetrics) String() string {
	if m.progCount == 0 {
		return "none"
	}
	syncMean := 0.0
	if m.syncCount > 0 {
		syncMean = m.syncSum / m.syncCount
	}
	return fmt.Sprintf("%.0f, mean %.2f s, max ≤ %g s; %.0f syncs, mean %.0f ms", m.progCount, m.progSum/m.progCount, m.progMax(), m.syncCount, syncMean*1000)
}

// lagTable is the README's table: by variant, the failures through each
// node, the lag each node showed, the drains, and the kube-proxies'
// metrics.
func lagTable(nodes []cluster.Node, rows []lagResult) string {
	var b strings.Builder
	b.WriteString("\n| stop | failed/requests through node 1, 2 (lagging), 3 | last answer after deletion, node 1, 2, 3 | drains (SIGTERM → app's SIGTERM) |\n|---|---|---|---|\n")
	for _, r := range rows {
		var fails, lags []string
		for i := range nodes {
			fails = append(fails, fmt.Sprintf("%d/%d", r.load[i].Failed, r.load[i].OK+r.load[i].Failed))
			lags = append(lags, fmt.Sprintf("%.1f s", r.lag(i).Seconds()))
		}
		var ds []string
		for _, d := range r.drains {
			s := d.String()
			if last, ok := r.last[1][d.pod]; ok && d.arrivals >= 0 {
				s += fmt.Sprintf(", ended %.2f s after node 2's last request", d.stopAt.Add(d.took).Sub(last).Seconds())
			}
			ds = append(ds, s)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.variant.name, strings.Join(fails, ", "), strings.Join(lags, ", "), strings.Join(ds, "; "))
	}
	b.WriteString("\n| stop | node | network programming (count, mean, max bucket); rule syncs |\n|---|---|---|\n")
	for _, r := range rows {
		for i, n := range nodes {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", r.variant.name, n.Name, r.proxy[i])
		}
	}
	return b.String()
}
