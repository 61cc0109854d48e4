package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Limits of the HTTP servers.
const (
	// maxHeaderBytes is the documented limit on a request's line and
	// headers (431 above it). net/http reads MaxHeaderBytes plus 4096
	// bytes of slack before it refuses, so the slack is taken off here.
	maxHeaderBytes = 16 << 10
	headerSlack    = 4096
	// maxConns bounds the connections a server holds open: probes,
	// scrapes and admin calls need a handful; each connection costs a
	// descriptor and a goroutine with its buffers.
	maxConns = 128
)

// newHTTPServer returns a server with every limit set: a slow or hostile
// client can hold neither a goroutine nor memory for long.
func newHTTPServer(h http.Handler, logger *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes - headerSlack,
		ErrorLog:          zap.NewStdLog(logger.Named("http")),
	}
}

// connLimiter caps the open connections of a server. A new connection over
// the cap takes the place of the one that has waited longest without a
// request in flight (idle keep-alive, or connected and silent), which is
// closed: thousands of idle clients then cost maxConns descriptors, and a
// kubelet probe, which opens a fresh connection each time, is still
// answered at once. Only when every connection is busy does Accept wait,
// at most until a request ends (bounded by the server's timeouts).
type connLimiter struct {
	net.Listener
	max int

	mu      sync.Mutex
	conns   map[net.Conn]connInfo
	changed chan struct{} // a connection went idle or closed
	closed  chan struct{} // Close was called
	once    sync.Once
}

type connInfo struct {
	busy  bool
	since time.Time
}

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: ln, max: max, conns: map[net.Conn]connInfo{}, changed: make(chan struct{}, 1), closed: make(chan struct{})}
}

// Close closes the listener and ends an Accept that waits for a free slot.
func (l *connLimiter) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func (l *connLimiter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		l.mu.Lock()
		if len(l.conns) < l.max {
			l.conns[c] = connInfo{since: time.Now()}
			l.mu.Unlock()
			return c, nil
		}
		victim := l.oldestIdle()
		if victim != nil {
			delete(l.conns, victim)
		}
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Close()
			continue
		}
		select {
		case <-l.changed:
		case <-l.closed:
			_ = c.Close()
			return nil, net.ErrClosed
		}
	}
}

// oldestIdle returns the connection without a request in flight that has
// waited longest, nil if all are busy. l.mu is held.
func (l *connLimiter) oldestIdle() net.Conn {
	var victim net.Conn
	var since time.Time
	for c, i := range l.conns {
		if !i.busy && (victim == nil || i.since.Before(since)) {
			victim, since = c, i.since
		}
	}
	return victim
}

// track is the server's ConnState hook.
func (l *connLimiter) track(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	switch s {
	case http.StateActive:
		if _, ok := l.conns[c]; ok {
			l.conns[c] = connInfo{busy: true}
		}
	case http.StateIdle:
		if _, ok := l.conns[c]; ok {
			l.conns[c] = connInfo{since: time.Now()}
		}
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	}
	l.mu.Unlock()
	if s != http.StateActive && s != http.StateNew {
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
}

// listen binds addr now, at start-up, so that a bad or busy address is a
// configuration error before the child starts rather than a log line later.
func listen(addr string, loopbackOnly bool) (net.Listener, error) {
	if loopbackOnly {
		if err := checkLoopback(addr); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// adminGuard lets through only the requests a process on this host makes
// on purpose. Loopback is not enough on a laptop or a host-network pod: a
// web page open in a browser there can POST /quitquitquit to 127.0.0.1 (a
// simple form post needs no CORS preflight), or rebind its own domain to
// 127.0.0.1. So the Host header must be localhost or a loopback address,
// which a rebound page cannot fake, and a browser's cross-origin request
// is refused (http.CrossOriginProtection reads Sec-Fetch-Site and Origin).
// curl, wget, a sidecar or a preStop hook send neither, and pass.
func adminGuard(h http.Handler) http.Handler {
	cross := http.NewCrossOriginProtection().Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(w, "admin endpoints answer only to Host: localhost or a loopback address", http.StatusForbidden)
			return
		}
		cross.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names localhost or a loopback
// address, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkLoopback refuses any address the admin endpoints could be reached on
// from outside the pod: only 127.0.0.0/8, ::1 and localhost.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %s", addr, addrReason(err))
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("admin address %q is not a loopback address (use 127.0.0.1:PORT)", addr)
	}
	return nil
}

// serve is an actor: it serves on ln until ctx is done, then shuts down,
// giving in-flight requests 100 ms: by then the child is gone, and a probe
// or scrape that is still running must not hold up the container's exit.
func serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	lim := newConnLimiter(ln, maxConns)
	srv.ConnState = lim.track
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lim) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
