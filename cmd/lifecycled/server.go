package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// newHTTPServer returns a server with every limit set: a slow or hostile
// client can hold neither a goroutine nor memory for long.
func newHTTPServer(h http.Handler, logger *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(logger.Named("http")),
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
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
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
