package lbsim

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// The L7 mode of the Balancer (BalancerOptions.L7): an HTTP proxy that
// picks a backend per request and keeps a pool of connections to each.

// pool is the backend's pool of kept-alive connections, each recording
// when it last sent request bytes.
func (s *backendState) pool(dialTimeout time.Duration) *http.Transport {
	d := net.Dialer{Timeout: dialTimeout}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return sentConn{c, s.sent}, nil
		},
		MaxIdleConnsPerHost: 32, // ingress-nginx's upstream keepalive is 320
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
}

// sentConn is a connection that calls sent after each write that wrote
// something.
type sentConn struct {
	net.Conn
	sent func()
}

func (c sentConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.sent()
	}
	return n, err
}

// serveL7 proxies requests until ctx ends.
func (b *Balancer) serveL7(ctx context.Context) error {
	srv := &http.Server{Handler: http.HandlerFunc(b.proxy), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	err := srv.Serve(b.ln)
	for _, be := range b.backends {
		be.upstream.CloseIdleConnections()
	}
	if ctx.Err() != nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// proxy sends one request to a backend in rotation: 503 if there is none,
// 502 if the backend did not answer.
func (b *Balancer) proxy(w http.ResponseWriter, r *http.Request) {
	be := b.pick()
	if be == nil {
		b.noRoute.Add(1)
		http.Error(w, "no backend in rotation", http.StatusServiceUnavailable)
		return
	}
	be.conns.Add(1)
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.RequestURI = "http", be.Addr, ""
	resp, err := be.upstream.RoundTrip(out)
	if err != nil {
		be.dialErrors.Add(1)
		http.Error(w, "backend "+be.Name+": "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
