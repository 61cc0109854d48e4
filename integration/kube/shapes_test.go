//go:build kube

package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
)

// trafficShape is one kind of client in TestTrafficShapesInCluster.
type trafficShape struct {
	key, name string
	// clients are the load's HTTP clients, one per caller, dialling from
	// the node's network namespace.
	clients func(nsPath string) []*http.Client
	// proxied: the clients go through an L7 proxy that learns endpoints
	// from EndpointSlices, not through the Service's ClusterIP.
	proxied bool
	// pinned: each client keeps one connection, which kube-proxy pinned
	// to one pod, so traffic to the old pod never stops by itself.
	pinned bool
}

// shapeCallers is how many callers each shape runs, each sending a request
// every 20 ms.
const shapeCallers = 4

var trafficShapes = []trafficShape{
	{key: "pool", name: "Go's default pool through the ClusterIP", clients: func(nsPath string) []*http.Client {
		return sharedClient(nsPath, false)
	}},
	{key: "keepalive", name: "keep-alive, a connection per client through the ClusterIP", pinned: true, clients: func(nsPath string) []*http.Client {
		var cs []*http.Client
		for range shapeCallers {
			cs = append(cs, nsClient(nsPath, true, 3*time.Second))
		}
		return cs
	}},
	{key: "h2c", name: "HTTP/2 (h2c), one connection through the ClusterIP", pinned: true, clients: func(nsPath string) []*http.Client {
		return sharedClient(nsPath, true)
	}},
	{key: "l7", name: "L7 proxy from EndpointSlices, pooled upstream", proxied: true, clients: func(nsPath string) []*http.Client {
		var cs []*http.Client
		for range shapeCallers {
			cs = append(cs, nsClient(nsPath, false, 3*time.Second))
		}
		return cs
	}},
}

// sharedClient is one client, Go's default transport dialling from the
// node, shared by every caller (h2: HTTP/2 with prior knowledge only).
func sharedClient(nsPath string, h2 bool) []*http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy, tr.DialContext = nil, cluster.Dialer(nsPath)
	if h2 {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	c := &http.Client{Timeout: 3 * time.Second, Transport: tr}
	cs := make([]*http.Client, shapeCallers)
	for i := range cs {
		cs[i] = c
	}
	return cs
}

// TestTrafficShapesInCluster is lbsim's TestZeroDowntimeTrafficShapes on a
// real kubelet, endpoints controller and kube-proxy: a Deployment of 2
// replicas of the naive backend, restarted under pooled traffic, for tini
// with no preStop and with preStop sleep 5, lifecycled's fixed 5 s drain and its request-aware
// adaptive drain. With lifecycled no request may fail, whatever the shape.
//
// Through the L7 proxy, which stops sending to an endpoint once it is not
// ready (as ingress controllers do), the old pod's traffic ends soon after
// SIGTERM: the adaptive drain must end on it, after the proxy's last
// request to the pod and at most quiet + 1 s after it. So through the
// ClusterIP with Go's default pool, which keeps at most 2 idle connections
// and so keeps opening new ones, which kube-proxy sends to the new pods.
// A client that keeps one connection (a keep-alive connection each, one
// HTTP/2 connection) stays pinned to the old pod until the app closes it,
// so its requests never stop by themselves: the adaptive drain must see
// them and wait its ceiling rather than cut them.
func TestTrafficShapesInCluster(t *testing.T) {
	ctx := testContext(t, 15*time.Minute)
	variants := []variant{withTini, withTiniSleep, withLifecycled, withLifecycledAdaptive}
	var table strings.Builder
	table.WriteString("\n| clients | wrapper | requests | failed | rollout | old pods gone | per-pod drain | proxy's last request → drain end |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range trafficShapes {
		for _, v := range variants {
			t.Run(s.key+"/"+v.key, func(t *testing.T) {
				ns := namespace(t)
				applyObjects(t, ctx, ns, appService("app", 80, "http"), appDeployment("app", 2, v))
				nsPath := cluster.NetNSPath(cluster.NetNS)
				url := fmt.Sprintf("http://%s/", serviceIP(t, ctx, ns, "app"))
				var proxy *l7Proxy
				if s.proxied {
					proxy = startL7Proxy(t, ctx, ns, "app", nsPath)
					url = proxy.url
				}
				r := rolloutUnderLoadWith(t, ctx, ns, "app", url, 2, func() *load { return startLoadClients(url, s.clients(nsPath)...) })
				r.name = v.name
				var ds, after []string
				for _, d := range r.drains {
					ds = append(ds, d.String())
				}
				if proxy != nil {
					for _, d := range r.drains {
						if last, ok := proxy.lastTo(d.pod); ok {
							after = append(after, fmt.Sprintf("%.2fs", d.stopAt.Add(d.took).Sub(last).Seconds()))
						}
					}
				}
				fmt.Fprintf(&table, "| %s | %s | %d | %d | %.1f s | %.1f s | %s | %s |\n", s.name, v.name, r.load.OK+r.load.Failed, r.load.Failed,
					r.rollout.Seconds(), r.drained.Seconds(), strings.Join(ds, "; "), strings.Join(after, "; "))
				t.Logf("%s, %s: %s; rollout %s, old pods gone after %s; drains %v", s.name, v.name, r.load,
					r.rollout.Round(100*time.Millisecond), r.drained.Round(100*time.Millisecond), r.drains)
				assert.Greater(t, r.load.OK, int64(300), "too few requests to mean anything")
				if !v.expectZero {
					return
				}
				assert.Zero(t, r.load.Failed, "failed requests during the rollout: %s", r.load)
				if v.key != withLifecycledAdaptive.key {
					return
				}
				require.Len(t, r.drains, 2, "a drain in the logs of every old pod")
				if s.pinned {
					// A pinned connection carried requests to its old pod
					// all the drain long: that pod's drain must wait its
					// ceiling (the connection-only drain ended after the
					// quiet period and cut them). An old pod that held no
					// connection rightly ends after the quiet period.
					ceilings := 0
					for _, d := range r.drains {
						if d.ceiling {
							ceilings++
						}
					}
					assert.Positive(t, ceilings, "no adaptive drain waited its ceiling with pinned traffic on its pod: %v", r.drains)
					return
				}
				for _, d := range r.drains {
					if !s.proxied {
						// Go's default pool keeps 2 idle connections and
						// opens new ones, which kube-proxy sends to the new
						// pods: traffic to the old pod stops.
						assert.False(t, d.ceiling, "adaptive drain of %s ran into --drain-delay: %s", d.pod, d)
						continue
					}
					assert.False(t, d.ceiling, "adaptive drain of %s ran into --drain-delay behind the L7 proxy: %s", d.pod, d)
					last, ok := proxy.lastTo(d.pod)
					if !assert.True(t, ok, "the proxy sent no request to %s", d.pod) {
						continue
					}
					end := d.stopAt.Add(d.took)
					assert.True(t, end.After(last), "drain of %s ended %s before the proxy's last request to it", d.pod, last.Sub(end))
					// Goal quiet + 0.3 s; the bound holds a loaded machine,
					// far from the 10 s ceiling.
					assert.LessOrEqual(t, end.Sub(last), drainQuiet+time.Second, "drain of %s ended %s after the proxy's last request to it", d.pod, end.Sub(last))
				}
			})
		}
	}
	t.Log(table.String())
}

// l7Proxy is a small HTTP reverse proxy in the node's network namespace
// that does what an ingress controller does with a Service's endpoints: it
// watches the EndpointSlices, sends each request to a ready endpoint (round
// robin) over a pool of kept-alive upstream connections, and stops sending
// to an endpoint once it is no longer ready. It does not retry a failed
// request on another endpoint (ingress-nginx's proxy_next_upstream would,
// for some failures): a lost request shows as a 502.
type l7Proxy struct {
	url      string
	upstream *http.Transport

	mu    sync.Mutex
	ready []string          // ready endpoint addresses, sorted
	pods  map[string]string // address -> pod name
	last  map[string]time.Time
	next  int
}

// startL7Proxy starts the proxy for service svc in ns and waits until it
// knows a ready endpoint; it stops with the test.
func startL7Proxy(t *testing.T, ctx context.Context, ns, svc, nsPath string) *l7Proxy {
	t.Helper()
	p := &l7Proxy{pods: map[string]string{}, last: map[string]time.Time{}}
	p.upstream = http.DefaultTransport.(*http.Transport).Clone()
	p.upstream.Proxy, p.upstream.DialContext = nil, cluster.Dialer(nsPath)
	p.upstream.MaxIdleConnsPerHost = 32 // ingress-nginx's upstream keepalive is 320
	t.Cleanup(p.upstream.CloseIdleConnections)

	wctx, cancel := context.WithCancel(ctx)
	cmd := kubectlCmd(wctx, "get", "endpointslices", "-n", ns, "-l", discoveryv1.LabelServiceName+"="+svc,
		"--watch", "--output-watch-events", "-o", "json")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		p.watch(out)
	}()
	t.Cleanup(func() {
		cancel()
		<-watched
		_ = cmd.Wait()
	})

	ln, err := cluster.Listen(nsPath, "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	p.url = "http://" + ln.Addr().String() + "/"
	eventually(t, ctx, "the L7 proxy to know a ready endpoint of "+svc, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.ready) > 0
	})
	return p
}

// watch reads `kubectl get --watch --output-watch-events -o json` and keeps
// the ready endpoints, until the stream ends.
func (p *l7Proxy) watch(r io.Reader) {
	slices := map[string]discoveryv1.EndpointSlice{}
	dec := json.NewDecoder(r)
	for {
		var ev struct {
			Type   string                    `json:"type"`
			Object discoveryv1.EndpointSlice `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			return
		}
		if ev.Type == "DELETED" {
			delete(slices, ev.Object.Name)
		} else {
			slices[ev.Object.Name] = ev.Object
		}
		var ready []string
		pods := map[string]string{}
		for _, s := range slices {
			for _, e := range s.Endpoints {
				// A nil ready is unknown, which consumers take as ready.
				if e.Conditions.Ready != nil && !*e.Conditions.Ready {
					continue
				}
				for _, a := range e.Addresses {
					ready = append(ready, a)
					if e.TargetRef != nil {
						pods[a] = e.TargetRef.Name
					}
				}
			}
		}
		p.mu.Lock()
		p.ready = ready
		for a, pod := range pods {
			p.pods[a] = pod
		}
		p.mu.Unlock()
	}
}

// serve proxies one request to the next ready endpoint's port 8080.
func (p *l7Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if len(p.ready) == 0 {
		p.mu.Unlock()
		http.Error(w, "no ready endpoint", http.StatusServiceUnavailable)
		return
	}
	addr := p.ready[p.next%len(p.ready)]
	p.next++
	p.last[p.pods[addr]] = time.Now()
	p.mu.Unlock()

	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.RequestURI = "http", net.JoinHostPort(addr, "8080"), ""
	resp, err := p.upstream.RoundTrip(out)
	if err != nil {
		http.Error(w, "upstream "+addr+": "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// lastTo is when the proxy last sent a request to pod.
func (p *l7Proxy) lastTo(pod string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.last[pod]
	return t, ok
}
