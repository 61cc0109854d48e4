package probes

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/lifecycled/lifecycled/redact"
)

// Health is the state behind /readyz, /livez and /startupz. It is safe for
// concurrent use: the supervisor, the prober, the stop sequence and the HTTP
// server all touch it.
type Health struct {
	// setMu serialises Set and the readiness hooks it calls, so hooks see
	// changes in the order they happened; mu guards the state and is never
	// held while a hook runs, so a hook may read Health.
	setMu sync.Mutex

	mu      sync.RWMutex
	order   []string               // check names, in order of first Set
	checks  map[string]checkResult // by name
	ready   bool                   // the AND of checks, as last computed
	live    bool
	started bool
	hooks   []func(bool)
}

// checkResult is the state of one named check.
type checkResult struct {
	ok     bool
	reason string
}

// NewHealth returns a Health that is not ready, not live and not started.
func NewHealth() *Health {
	return &Health{checks: make(map[string]checkResult)}
}

// Set records the state of the named readiness check; reason says why it is
// failing and is ignored when ok. Readiness is the AND of every check ever
// Set, so main registers its checks ("dependencies", "child", "poststart",
// "probe", "draining") at start, failing, and clears them as they pass; they
// are listed in the order of their first Set.
func (h *Health) Set(name string, ok bool, reason string) {
	h.setMu.Lock()
	defer h.setMu.Unlock()

	h.mu.Lock()
	if _, seen := h.checks[name]; !seen {
		h.order = append(h.order, name)
	}
	// /readyz?verbose is served to anyone who reaches --listen: a reason
	// naming a URL (a redirect's target) shows no password.
	h.checks[name] = checkResult{ok: ok, reason: redact.URLs(reason)}
	was := h.ready
	h.ready = h.computeReady()
	now := h.ready
	hooks := h.hooks
	h.mu.Unlock()

	if now != was {
		for _, fn := range hooks {
			fn(now)
		}
	}
}

// computeReady is the AND of all checks. With none registered it is false:
// a Health that nobody set up must not claim readiness. Call with mu held.
func (h *Health) computeReady() bool {
	if len(h.checks) == 0 {
		return false
	}
	for _, c := range h.checks {
		if !c.ok {
			return false
		}
	}
	return true
}

// SetLive records whether lifecycled supervises a running child (/livez).
func (h *Health) SetLive(ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live = ok
}

// SetStarted records whether the child started and postStart finished
// (/startupz).
func (h *Health) SetStarted(ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = ok
}

// Ready reports whether every readiness check passes.
func (h *Health) Ready() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.ready
}

// OnReadyChange registers fn to be called with the new readiness whenever it
// changes, and once at once with the current value, so that a gauge set by fn
// is right from the start. fn runs in the goroutine that called Set; it may
// read Health but must not call Set.
func (h *Health) OnReadyChange(fn func(bool)) {
	h.setMu.Lock()
	defer h.setMu.Unlock()
	h.mu.Lock()
	h.hooks = append(h.hooks, fn)
	ready := h.ready
	h.mu.Unlock()
	fn(ready)
}

// Handler serves GET and HEAD /readyz, /livez and /startupz as the Kubernetes
// API server does: 200 "ok" when passing, otherwise 503 with the list of
// checks and "<endpoint> check failed". With ?verbose the list is always
// given, with the reasons of failed checks; without it the reasons are
// withheld, as the API server withholds them, since the endpoint may be
// reachable by more than the kubelet.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		serveChecks(w, r, "readyz", h.readyChecks())
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) {
		h.mu.RLock()
		c := namedCheck{"child", checkResult{ok: h.live, reason: "no running child"}}
		h.mu.RUnlock()
		serveChecks(w, r, "livez", []namedCheck{c})
	})
	mux.HandleFunc("/startupz", func(w http.ResponseWriter, r *http.Request) {
		h.mu.RLock()
		c := namedCheck{"started", checkResult{ok: h.started, reason: "child not started or postStart not finished"}}
		h.mu.RUnlock()
		serveChecks(w, r, "startupz", []namedCheck{c})
	})
	return mux
}

// namedCheck is a check with its name, for listing.
type namedCheck struct {
	name string
	checkResult
}

// readyChecks returns the readiness checks in the order of first Set.
func (h *Health) readyChecks() []namedCheck {
	h.mu.RLock()
	defer h.mu.RUnlock()
	checks := make([]namedCheck, 0, len(h.order))
	for _, name := range h.order {
		checks = append(checks, namedCheck{name, h.checks[name]})
	}
	return checks
}

// serveChecks writes the answer of one endpoint from its checks. An endpoint
// with no checks fails, as computeReady does.
func serveChecks(w http.ResponseWriter, r *http.Request, endpoint string, checks []namedCheck) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	_, verbose := r.URL.Query()["verbose"]
	passed := len(checks) > 0
	var list strings.Builder
	for _, c := range checks {
		if c.ok {
			fmt.Fprintf(&list, "[+]%s ok\n", c.name)
			continue
		}
		passed = false
		reason := "reason withheld"
		if verbose {
			reason = oneLine([]byte(c.reason))
			if reason == "" {
				reason = "no reason given"
			}
		}
		fmt.Fprintf(&list, "[-]%s failed: %s\n", c.name, reason)
	}

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case !passed:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "%s%s check failed\n", list.String(), endpoint)
	case verbose:
		fmt.Fprintf(w, "%s%s check passed\n", list.String(), endpoint)
	default:
		fmt.Fprint(w, "ok")
	}
}
