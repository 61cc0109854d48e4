// Package health serves /readyz, /livez and /startupz from named checks,
// with the Kubernetes API server's answers and `?verbose` lists.
package health

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/lifecycled/lifecycled/internal/redact"
)

// Checks is the state behind /readyz, /livez and /startupz. It is safe for
// concurrent use: the supervisor, the probers, the stop sequence and the
// HTTP server all touch it.
//
// The three endpoints answer different questions, as the kubelet asks them:
//   - /readyz: should this pod get traffic? The AND of the readiness checks.
//   - /livez: is lifecycled alive and making progress? Restarting the
//     container must fix whatever fails here, so waiting for a dependency,
//     running postStart and draining all pass; only the liveness checks fail
//     it (the --live probe).
//   - /startupz: has the child started and postStart finished?
type Checks struct {
	// setMu serialises Set and the readiness hooks it calls, so hooks see
	// changes in the order they happened; mu guards the state and is never
	// held while a hook runs, so a hook may read Checks.
	setMu sync.Mutex

	mu      sync.RWMutex
	ready   checkSet // readiness checks
	live    checkSet // liveness checks besides "ping"
	isReady bool     // the AND of ready, as last computed
	started bool
	hooks   []func(bool)
}

// checkSet is a set of named checks that remembers the order of first Set.
type checkSet struct {
	order  []string
	checks map[string]checkResult
}

func (s *checkSet) set(name string, ok bool, reason string) {
	if s.checks == nil {
		s.checks = make(map[string]checkResult)
	}
	if _, seen := s.checks[name]; !seen {
		s.order = append(s.order, name)
	}
	// /readyz?verbose and /livez?verbose are served to anyone who
	// reaches --listen: a reason naming a URL (a redirect's target) shows
	// no password.
	s.checks[name] = checkResult{ok: ok, reason: redact.URLs(reason)}
}

func (s *checkSet) list() []namedCheck {
	out := make([]namedCheck, 0, len(s.order))
	for _, name := range s.order {
		out = append(out, namedCheck{name, s.checks[name]})
	}
	return out
}

// checkResult is the state of one named check.
type checkResult struct {
	ok     bool
	reason string
}

// NewChecks returns a Checks that is not ready and not started, and live
// (nothing has failed yet).
func NewChecks() *Checks {
	return &Checks{}
}

// Set records the state of the named readiness check; reason says why it is
// failing and is ignored when ok. Readiness is the AND of every check ever
// Set, so main registers its checks ("dependencies", "child", "poststart",
// "probe", "draining") at start, failing, and clears them as they pass; they
// are listed in the order of their first Set.
func (h *Checks) Set(name string, ok bool, reason string) {
	h.setMu.Lock()
	defer h.setMu.Unlock()

	h.mu.Lock()
	h.ready.set(name, ok, reason)
	was := h.isReady
	h.isReady = allPass(h.ready.list())
	now := h.isReady
	hooks := h.hooks
	h.mu.Unlock()

	if now != was {
		for _, fn := range hooks {
			fn(now)
		}
	}
}

// allPass is the AND of checks. With none it is false: a Checks that
// nobody set up must not claim readiness.
func allPass(checks []namedCheck) bool {
	if len(checks) == 0 {
		return false
	}
	for _, c := range checks {
		if !c.ok {
			return false
		}
	}
	return true
}

// SetLive records the state of the named liveness check (/livez), listed
// after the built-in "ping" in the order of first SetLive. Only something a
// restart would cure belongs here: a hung application, never a wait.
func (h *Checks) SetLive(name string, ok bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live.set(name, ok, reason)
}

// SetStarted records whether the child started and postStart finished
// (/startupz).
func (h *Checks) SetStarted(ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = ok
}

// OnReadyChange registers fn to be called with the new readiness whenever it
// changes, and once at once with the current value, so that a gauge set by fn
// is right from the start. fn runs in the goroutine that called Set; it may
// read Checks but must not call Set.
func (h *Checks) OnReadyChange(fn func(bool)) {
	h.setMu.Lock()
	defer h.setMu.Unlock()
	h.mu.Lock()
	h.hooks = append(h.hooks, fn)
	ready := h.isReady
	h.mu.Unlock()
	fn(ready)
}

// Endpoints are the paths Handler serves, each also as PATH/CHECK.
var Endpoints = []string{"/readyz", "/livez", "/startupz"}

// Handler serves GET and HEAD /readyz, /livez and /startupz as the Kubernetes
// API server does: 200 "ok" when passing, otherwise 503 with the list of
// checks and "<endpoint> check failed". With ?verbose the list is always
// given, with the reasons of failed checks; without it the reasons are
// withheld, as the API server withholds them, since the endpoint may be
// reachable by more than the kubelet. ?exclude=NAME (repeatable) leaves a
// check out, and /ENDPOINT/NAME answers for that one check alone (404 for a
// check the endpoint does not have), both as in kube-apiserver.
func (h *Checks) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, ep := range Endpoints {
		name := strings.TrimPrefix(ep, "/")
		mux.HandleFunc(ep, func(w http.ResponseWriter, r *http.Request) {
			serveChecks(w, r, name, h.checks(name))
		})
		mux.HandleFunc(ep+"/{check}", func(w http.ResponseWriter, r *http.Request) {
			check := r.PathValue("check")
			checks := h.checks(name)
			i := slices.IndexFunc(checks, func(c namedCheck) bool { return c.name == check })
			if i < 0 {
				http.Error(w, fmt.Sprintf("%s has no check named %s", ep, strconv.Quote(check)), http.StatusNotFound)
				return
			}
			// ?exclude does not apply: excluding the one check asked
			// for would make the answer meaningless.
			q := r.URL.Query()
			q.Del("exclude")
			r = r.Clone(r.Context())
			r.URL.RawQuery = q.Encode()
			serveChecks(w, r, name+"/"+check, checks[i:i+1])
		})
	}
	return mux
}

// checks returns the checks of an endpoint, in the order they are listed.
func (h *Checks) checks(endpoint string) []namedCheck {
	h.mu.RLock()
	defer h.mu.RUnlock()
	switch endpoint {
	case "readyz":
		return h.ready.list()
	case "livez":
		return h.liveChecks()
	default:
		return []namedCheck{{"started", checkResult{ok: h.started, reason: "child not started or postStart not finished"}}}
	}
}

// liveChecks are "ping", which passes whenever the HTTP server can answer
// (as kube-apiserver's), then the registered liveness checks. Call with mu
// held.
func (h *Checks) liveChecks() []namedCheck {
	return append([]namedCheck{{"ping", checkResult{ok: true}}}, h.live.list()...)
}

// namedCheck is a check with its name, for listing.
type namedCheck struct {
	name string
	checkResult
}

// serveChecks writes the answer of one endpoint from its checks. An endpoint
// with no checks fails, as allPass does; one whose checks are all excluded
// passes, as in kube-apiserver.
func serveChecks(w http.ResponseWriter, r *http.Request, endpoint string, checks []namedCheck) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	query := r.URL.Query()
	_, verbose := query["verbose"]
	excluded := map[string]bool{}
	for _, name := range query["exclude"] {
		excluded[name] = true
	}
	passed := len(checks) > 0
	var list strings.Builder
	for _, c := range checks {
		switch {
		case excluded[c.name]:
			delete(excluded, c.name)
			fmt.Fprintf(&list, "[+]%s excluded: ok\n", c.name)
			continue
		case c.ok:
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
	if len(excluded) > 0 {
		// kube-apiserver's words: a typo in a probe's exclude must show.
		names := make([]string, 0, len(excluded))
		for name := range excluded {
			names = append(names, strconv.Quote(oneLine([]byte(name))))
		}
		slices.Sort(names)
		fmt.Fprintf(&list, "warn: some health checks cannot be excluded: no matches for %s\n", strings.Join(names, ","))
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

// oneLine folds text onto one line: a check's answer is one line per check.
// (probes has its own for its outputs; health does not import probes.)
func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}
