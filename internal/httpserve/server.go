// Package httpserve is how lifecycled serves HTTP (--listen and
// --admin-listen): every limit of net/http set, a cap on open connections
// that lets a fresh probe in over busy or idle clients, request bodies
// refused or bounded, and addresses checked and bound before the child
// starts.
package httpserve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	// busyMax is how long a request may keep its connection busy before
	// a new connection over maxConns may take its place: every endpoint
	// answers in milliseconds, and a kubelet probe on a fresh connection
	// must not wait behind clients that trickle their requests in.
	busyMax = 250 * time.Millisecond
	// AdminMaxBody bounds the body of an admin request (POST /drain,
	// /quitquitquit), which the endpoints ignore but some clients send
	// ({} or a form); it must arrive within adminBodyTimeout.
	AdminMaxBody     = 4 << 10
	adminBodyTimeout = time.Second
)

// NewServer returns a server with every limit set: a slow or hostile
// client can hold neither a goroutine nor memory for long. maxBody is the
// largest request body it takes (0: none, as the health endpoints and
// /metrics take none).
func NewServer(h http.Handler, maxBody int64, logger *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           limitBody(h, maxBody, adminBodyTimeout),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes - headerSlack,
		ErrorLog:          zap.NewStdLog(logger.Named("http")),
	}
}

// limitBody refuses a request body over max bytes (413), and one that does
// not arrive within timeout (408), and closes the connection either way.
// A body within bounds is read before h runs. net/http would otherwise
// read up to 256 KiB of a body the handler ignores, before it answers or
// after, for as long as its read timeout: a client trickling a body into
// GET /readyz held its connection busy for 10 s.
func limitBody(h http.Handler, max int64, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		tooLarge := fmt.Sprintf("request body over %d bytes", max)
		if max == 0 {
			tooLarge = "this endpoint takes no request body"
		}
		if r.ContentLength > max || max == 0 {
			refuse(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(timeout))
		body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			refuse(w, http.StatusRequestTimeout, fmt.Sprintf("request body not read within %s", timeout))
			return
		case err != nil:
			refuse(w, http.StatusBadRequest, "bad request body")
			return
		case int64(len(body)) > max:
			refuse(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		_ = rc.SetReadDeadline(time.Time{}) // the server sets its own for the next request
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
}

// refuse answers code and closes the connection without reading what is
// left of the request: net/http would read the rest of a body it has not
// seen the end of, at the client's pace, before closing.
func refuse(w http.ResponseWriter, code int, msg string) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	w.Header().Set("Connection", "close")
	http.Error(w, msg, code)
}

// connLimiter caps the open connections of a server. A new connection over
// the cap takes the place of the one that has waited longest without a
// request in flight (idle keep-alive, or connected and silent), which is
// closed: thousands of idle clients then cost maxConns descriptors, and a
// kubelet probe, which opens a fresh connection each time, is still
// answered at once. When every connection is busy, it takes the place of
// the one busy longest, once that one has been busy for busy: a request
// takes milliseconds, and clients that trickle theirs in byte by byte
// must not hold every slot for the server's read timeouts. So Accept
// waits at most busy.
type connLimiter struct {
	net.Listener
	max  int
	busy time.Duration

	mu      sync.Mutex
	conns   map[net.Conn]connInfo
	changed chan struct{} // a connection went idle or closed
	closed  chan struct{} // Close was called
	once    sync.Once
}

type connInfo struct {
	busy  bool
	since time.Time // when it went busy, or idle
}

func newConnLimiter(ln net.Listener, max int, busy time.Duration) *connLimiter {
	return &connLimiter{Listener: ln, max: max, busy: busy, conns: map[net.Conn]connInfo{}, changed: make(chan struct{}, 1), closed: make(chan struct{})}
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
		victim, wait := l.victim(time.Now())
		if victim != nil {
			delete(l.conns, victim)
		}
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Close()
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-l.changed:
		case <-t.C:
		case <-l.closed:
			t.Stop()
			_ = c.Close()
			return nil, net.ErrClosed
		}
		t.Stop()
	}
}

// victim returns the connection a new one takes the place of: the one
// without a request in flight that has waited longest, else the one busy
// longest if that is over l.busy. If there is none yet, it returns how
// long until there is. l.mu is held.
func (l *connLimiter) victim(now time.Time) (net.Conn, time.Duration) {
	var idle, busy net.Conn
	var idleSince, busySince time.Time
	for c, i := range l.conns {
		switch {
		case !i.busy && (idle == nil || i.since.Before(idleSince)):
			idle, idleSince = c, i.since
		case i.busy && (busy == nil || i.since.Before(busySince)):
			busy, busySince = c, i.since
		}
	}
	if idle != nil {
		return idle, 0
	}
	if over := now.Sub(busySince); busy == nil || over < l.busy {
		return nil, l.busy - over
	}
	return busy, 0
}

// track is the server's ConnState hook.
func (l *connLimiter) track(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	switch s {
	case http.StateActive:
		if _, ok := l.conns[c]; ok {
			l.conns[c] = connInfo{busy: true, since: time.Now()}
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

// Endpoint is one server lifecycled runs: the address to bind ("" for
// none), whether it must be a loopback address, the handler (built once the
// child has been forked) and the largest request body it takes.
type Endpoint struct {
	Addr     string
	Loopback bool
	Handler  func() http.Handler
	MaxBody  int64
	// Listener is set by BindAll.
	Listener net.Listener
}

// BindAll binds every endpoint with an address, all or none: on an error
// the ones already bound are closed.
func BindAll(eps ...Endpoint) ([]Endpoint, error) {
	var bound []Endpoint
	for _, ep := range eps {
		if ep.Addr == "" {
			continue
		}
		ln, err := Listen(ep.Addr, ep.Loopback)
		if err != nil {
			for _, prev := range bound {
				_ = prev.Listener.Close()
			}
			return nil, err
		}
		ep.Listener = ln
		bound = append(bound, ep)
	}
	return bound, nil
}

// Listen binds addr now, at start-up, so that a bad or busy address is a
// configuration error before the child starts rather than a log line later.
func Listen(addr string, loopbackOnly bool) (net.Listener, error) {
	if loopbackOnly {
		if err := CheckLoopback(addr); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// CheckLoopback refuses any address the admin endpoints could be reached on
// from outside the pod: only 127.0.0.0/8, ::1 and localhost.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %s", addr, addrReason(err))
	}
	if !IsLoopback(host) {
		return fmt.Errorf("admin address %q is not a loopback address (use 127.0.0.1:PORT)", addr)
	}
	return nil
}

// IsLoopback reports whether host (no port; an IPv6 address with or
// without brackets) is localhost, in any letter case as host names are, or
// a loopback address. It is the one rule for --admin-listen and for the
// Host header the admin endpoints answer to.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckAddr checks that addr is HOST:PORT (the host may be empty).
func CheckAddr(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("address %q: %s", addr, addrReason(err))
	}
	return nil
}

// addrReason is what is wrong with an address, without the address itself:
// net.AddrError repeats it unquoted, so a newline in it would split the one
// line of a usage error.
func addrReason(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

// Serve is an actor: it serves on ln until ctx is done, then shuts down,
// giving in-flight requests 100 ms: by then the child is gone, and a probe
// or scrape that is still running must not hold up the container's exit.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	lim := newConnLimiter(ln, maxConns, busyMax)
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
