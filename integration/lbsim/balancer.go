// Package lbsim simulates, on 127.0.0.1, what a pod's traffic goes through
// during a rolling update: a Service whose endpoints follow the pods'
// readiness with a lag (Balancer), clients sending steady traffic (Load),
// and the stop of one backend under a given init (RollingStop). The
// integration tests and the benchmark both use it, so the numbers in the
// benchmark come from the scenario the tests assert on.
//
// # The model
//
// Balancer is an L4 (TCP) proxy, as kube-proxy in iptables or IPVS mode is:
// it picks a backend per client connection, not per request, and every byte
// of that connection then goes to that backend, as a conntrack entry pins a
// flow. It picks only among backends in rotation. A backend enters or leaves
// the rotation a propagation delay after its readiness changed, as seen by
// polling its readiness URL every 100 ms: that is the time the endpoints
// controller, the API server watch and kube-proxy's rule sync take in a
// cluster, usually a second or more. A poll that gets an answer (a status, a
// refused connection) counts at once; a poll that times out counts only
// after three in a row, as the kubelet's failureThreshold would, so that a
// machine too busy to answer for a moment does not take a healthy backend
// out of the rotation.
//
// What follows from it, as in a cluster:
//   - a new connection routed to a backend that no longer listens fails (in
//     the proxy the client's connection is reset, where iptables would
//     answer its SYN with a reset: either way a failed request);
//   - a keep-alive connection opened before the drop stays on its backend
//     and dies with it; a client survives that only if the server closes it
//     while idle (http.Server.Shutdown does) and the client retries an
//     idempotent request on a reused connection that was closed (Go's
//     http.Transport does);
//   - removing a backend from the rotation never touches connections already
//     pinned to it.
//
// With BalancerOptions.L7 it is an L7 (HTTP) proxy instead, as an ingress
// controller or a mesh sidecar is (ingress-nginx with upstream keep-alive,
// Envoy): it picks a backend per request among those in rotation, and
// sends it on a pool of kept-alive connections of its own to that backend.
// A backend out of rotation gets no request, though its pooled connections
// stay open, idle, until the backend closes them. What it leaves out: the
// proxy's own retries to another backend (nginx's proxy_next_upstream),
// which would hide a failed upstream request; here the client gets the
// 502. Endpoints are learnt as above: readiness polled, a propagation
// delay, as an ingress controller watching EndpointSlices does.
package lbsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of BalancerOptions.
const (
	DefaultPollInterval = 100 * time.Millisecond
	DefaultPropagation  = time.Second
	DefaultPollTimeout  = time.Second // the kubelet's timeoutSeconds
	DefaultMaxTimeouts  = 3           // the kubelet's failureThreshold
	DefaultDialTimeout  = 2 * time.Second
)

// Backend is one endpoint behind the Balancer.
type Backend struct {
	// Name identifies the backend in stats and events.
	Name string
	// Addr is the HOST:PORT traffic goes to.
	Addr string
	// ReadyURL is polled; a status of 200-399 means ready, anything else
	// (another status, no answer, a timeout) not ready.
	ReadyURL string
}

// BalancerOptions tunes a Balancer; zero fields take the defaults.
type BalancerOptions struct {
	// PollInterval is how often each ReadyURL is polled.
	PollInterval time.Duration
	// PollTimeout bounds each poll.
	PollTimeout time.Duration
	// MaxTimeouts is how many polls in a row may time out before the
	// backend counts as not ready.
	MaxTimeouts int
	// Propagation is how long after a readiness change was seen the
	// rotation follows it: endpoints plus kube-proxy lag.
	Propagation time.Duration
	// DialTimeout bounds the connection to a backend.
	DialTimeout time.Duration
	// L7 makes the Balancer an HTTP proxy with a pool of connections to
	// each backend (see the package documentation).
	L7 bool
}

// Event is one change of a backend's place in the rotation.
type Event struct {
	Backend string
	// Ready is the new state.
	Ready bool
	// Seen is when a poll first showed the new readiness.
	Seen time.Time
	// Reason is what that poll got: "ok", "status 503", or the error.
	Reason string
	// Applied is when the rotation changed: Seen plus the propagation.
	Applied time.Time
}

// BackendStats is what the Balancer did with one backend.
type BackendStats struct {
	Name string
	// InRotation says whether new connections may go to the backend now.
	InRotation bool
	// Conns counts client connections proxied to the backend (L7:
	// requests).
	Conns int64
	// DialErrors counts connections the backend refused or did not take
	// (L7: requests that got no answer from it).
	DialErrors int64
	// LastSent is when the Balancer last wrote request bytes to the
	// backend; zero if never.
	LastSent time.Time
}

// Balancer is an L4 load balancer on 127.0.0.1 in front of backends whose
// readiness it polls (see the package documentation). NewBalancer binds its
// port; Run serves and polls.
type Balancer struct {
	opts     BalancerOptions
	ln       net.Listener
	backends []*backendState
	rr       atomic.Uint64
	noRoute  atomic.Int64

	mu     sync.Mutex
	events []Event
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // connection handlers
}

// backendState is one backend's readiness as polled and as applied to the
// rotation.
type backendState struct {
	Backend
	conns      atomic.Int64
	dialErrors atomic.Int64
	lastSent   atomic.Int64    // Unix nanoseconds
	upstream   *http.Transport // L7: the pool of connections to it

	mu         sync.Mutex
	seen       bool      // readiness as last polled
	seenAt     time.Time // when seen last changed
	reason     string    // what the poll that changed seen got
	timeouts   int       // polls in a row that timed out
	inRotation bool
}

// NewBalancer listens on a free port of 127.0.0.1 for the backends.
func NewBalancer(backends []Backend, opts BalancerOptions) (*Balancer, error) {
	if len(backends) == 0 {
		return nil, errors.New("balancer: no backends")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = DefaultPollTimeout
	}
	if opts.MaxTimeouts <= 0 {
		opts.MaxTimeouts = DefaultMaxTimeouts
	}
	if opts.Propagation <= 0 {
		opts.Propagation = DefaultPropagation
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	b := &Balancer{opts: opts, conns: make(map[net.Conn]struct{})}
	for _, be := range backends {
		if err := checkLoopbackAddr(be.Addr); err != nil {
			return nil, fmt.Errorf("balancer: backend %s: %w", be.Name, err)
		}
		s := &backendState{Backend: be}
		if opts.L7 {
			s.upstream = s.pool(opts.DialTimeout)
		}
		b.backends = append(b.backends, s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("balancer: %w", err)
	}
	b.ln = ln
	return b, nil
}

// Addr is the HOST:PORT clients connect to.
func (b *Balancer) Addr() string { return b.ln.Addr().String() }

// URL is http://Addr plus path.
func (b *Balancer) URL(path string) string { return "http://" + b.Addr() + path }

// Run accepts and proxies connections and polls every backend until ctx
// ends; then it closes the listener and every proxied connection and
// returns once all handlers are done.
func (b *Balancer) Run(ctx context.Context) error {
	var pollers sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{
		Proxy: nil,
		// A probe per connection, as the kubelet's: a kept-alive
		// connection would itself be one of the backend's connections.
		DisableKeepAlives: true,
	}}
	for _, be := range b.backends {
		pollers.Go(func() { b.poll(ctx, client, be) })
	}
	go func() {
		<-ctx.Done()
		_ = b.ln.Close()
	}()
	if b.opts.L7 {
		err := b.serveL7(ctx)
		pollers.Wait()
		return err
	}

	var err error
	for {
		c, aerr := b.ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("balancer: accept: %w", aerr)
				_ = b.ln.Close()
			}
			break
		}
		if !b.track(c) {
			_ = c.Close()
			break
		}
		b.wg.Go(func() { b.handle(c) })
	}

	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	pollers.Wait()
	return err
}

// WaitInRotation waits until every named backend takes new connections.
func (b *Balancer) WaitInRotation(ctx context.Context, names ...string) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		missing := ""
		for _, n := range names {
			be := b.backend(n)
			if be == nil {
				return fmt.Errorf("balancer: no backend %q", n)
			}
			if !be.rotating(time.Now(), b.opts.Propagation, b.record) {
				missing = n
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("balancer: wait for %s to be in rotation: %w", missing, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stats returns what the balancer did with each backend, in the order given
// to NewBalancer.
func (b *Balancer) Stats() []BackendStats {
	now := time.Now()
	out := make([]BackendStats, len(b.backends))
	for i, be := range b.backends {
		out[i] = BackendStats{
			Name:       be.Name,
			InRotation: be.rotating(now, b.opts.Propagation, b.record),
			Conns:      be.conns.Load(),
			DialErrors: be.dialErrors.Load(),
		}
		if at := be.lastSent.Load(); at != 0 {
			out[i].LastSent = time.Unix(0, at)
		}
	}
	return out
}

// NoRoute counts client connections closed because no backend was in
// rotation.
func (b *Balancer) NoRoute() int64 { return b.noRoute.Load() }

// Events returns the rotation changes so far, in order.
func (b *Balancer) Events() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.events...)
}

func (b *Balancer) backend(name string) *backendState {
	for _, be := range b.backends {
		if be.Name == name {
			return be
		}
	}
	return nil
}

func (b *Balancer) record(e Event) {
	b.mu.Lock()
	b.events = append(b.events, e)
	b.mu.Unlock()
}

// poll updates be's readiness every PollInterval.
func (b *Balancer) poll(ctx context.Context, client *http.Client, be *backendState) {
	tick := time.NewTicker(b.opts.PollInterval)
	defer tick.Stop()
	for {
		res := b.ready(ctx, client, be.ReadyURL)
		if ctx.Err() != nil {
			return
		}
		be.observe(res, time.Now(), b.opts.MaxTimeouts)
		// Applying here too, not only when a connection is routed,
		// keeps the events' Applied times right without traffic.
		be.rotating(time.Now(), b.opts.Propagation, b.record)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pollResult is what one readiness poll got.
type pollResult struct {
	ok       bool
	timedOut bool
	reason   string
}

func (b *Balancer) ready(ctx context.Context, client *http.Client, url string) pollResult {
	pctx, cancel := context.WithTimeout(ctx, b.opts.PollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, url, nil)
	if err != nil {
		return pollResult{reason: err.Error()}
	}
	resp, err := client.Do(req)
	if err != nil {
		return pollResult{timedOut: pctx.Err() != nil, reason: err.Error()}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return pollResult{reason: fmt.Sprintf("status %d", resp.StatusCode)}
	}
	return pollResult{ok: true, reason: "ok"}
}

// observe records a poll's result; a change starts the propagation clock,
// and a change back before it ran out cancels it. A timeout is a change
// only once maxTimeouts polls in a row timed out.
func (s *backendState) observe(res pollResult, now time.Time, maxTimeouts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if res.timedOut {
		if s.timeouts++; s.timeouts < maxTimeouts {
			return
		}
		res.reason = fmt.Sprintf("%d polls in a row timed out: %s", s.timeouts, res.reason)
	} else {
		s.timeouts = 0
	}
	if res.ok != s.seen {
		s.seen, s.seenAt, s.reason = res.ok, now, res.reason
	}
}

// rotating applies a seen change whose propagation delay has passed and
// says whether the backend is in rotation. It is evaluated when a
// connection is routed, so a drop happens on time, not at the next poll.
// record is told of the change.
func (s *backendState) rotating(now time.Time, propagation time.Duration, record func(Event)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen != s.inRotation && now.Sub(s.seenAt) >= propagation {
		s.inRotation = s.seen
		record(Event{Backend: s.Name, Ready: s.seen, Seen: s.seenAt, Reason: s.reason, Applied: s.seenAt.Add(propagation)})
	}
	return s.inRotation
}

// pick chooses the next backend in rotation, round robin; nil if none.
func (b *Balancer) pick() *backendState {
	now := time.Now()
	var in []*backendState
	for _, be := range b.backends {
		if be.rotating(now, b.opts.Propagation, b.record) {
			in = append(in, be)
		}
	}
	if len(in) == 0 {
		return nil
	}
	return in[(b.rr.Add(1)-1)%uint64(len(in))]
}

func (b *Balancer) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *Balancer) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// handle routes one client connection and splices it with its backend
// until both sides are done.
func (b *Balancer) handle(client net.Conn) {
	defer b.untrack(client)
	be := b.pick()
	if be == nil {
		b.noRoute.Add(1)
		reset(client)
		return
	}
	upstream, err := net.DialTimeout("tcp", be.Addr, b.opts.DialTimeout)
	if err != nil {
		// iptables would have sent the client's SYN to the dead
		// backend and the client would get its reset.
		be.dialErrors.Add(1)
		reset(client)
		return
	}
	be.conns.Add(1)
	if !b.track(upstream) {
		_ = upstream.Close()
		_ = client.Close()
		return
	}
	defer b.untrack(upstream)
	splice(client.(*net.TCPConn), upstream.(*net.TCPConn), be.sent)
}

// sent records that request bytes were just written to the backend.
func (s *backendState) sent() { s.lastSent.Store(time.Now().UnixNano()) }

// splice copies both ways; sent is called as bytes go to upstream. An
// orderly close (EOF) on one side is passed on as a half-close, so an idle
// keep-alive connection the backend closes is seen closed by the client;
// an error (a reset) resets both sides, as a reset passes through a NAT.
func splice(client, upstream *net.TCPConn, sent func()) {
	errc := make(chan error, 2)
	copyHalf := func(dst *net.TCPConn, w io.Writer, src *net.TCPConn) {
		_, err := io.Copy(w, src)
		if err == nil {
			err = dst.CloseWrite()
		}
		errc <- err
	}
	go copyHalf(upstream, sentConn{upstream, sent}, client)
	go copyHalf(client, client, upstream)
	for range 2 {
		if err := <-errc; err != nil {
			reset(client)
			reset(upstream)
		}
	}
	_ = client.Close()
	_ = upstream.Close()
}

// reset closes c with a TCP reset rather than a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// checkLoopbackAddr refuses anything but a loopback HOST:PORT: the
// simulation sends traffic nowhere else.
func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q: not a loopback IP address", addr)
	}
	return nil
}
