package lifecycle

import (
	"io"
	"net"
	"net/http"

	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/health"
	"github.com/lifecycled/lifecycled/internal/httpserve"
)

// Endpoints serves /readyz, /livez, /startupz and /metrics (--listen).
func (l *Lifecycle) Endpoints() http.Handler {
	mux := http.NewServeMux()
	h := l.health.Handler()
	for _, ep := range health.Endpoints {
		mux.Handle(ep, h)
		mux.Handle(ep+"/", h) // ENDPOINT/CHECK
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(l.reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(l.logger), Timeout: 5 * time.Second}))
	return mux
}

// Admin serves POST /drain and POST /quitquitquit (--admin-listen) behind
// adminGuard.
func (l *Lifecycle) Admin() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /drain", func(w http.ResponseWriter, _ *http.Request) {
		l.logger.Info("drain requested", zap.String("from", "POST /drain"))
		l.health.Set(checkShutdown, false, "drained by POST /drain")
		_, _ = io.WriteString(w, "draining\n")
	})
	mux.HandleFunc("POST /quitquitquit", func(w http.ResponseWriter, _ *http.Request) {
		l.logger.Info("stop requested", zap.String("from", "POST /quitquitquit"))
		l.stop.request(0, "POST /quitquitquit")
		_, _ = io.WriteString(w, "stopping\n")
	})
	return adminGuard(mux)
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
	return httpserve.IsLoopback(host)
}
