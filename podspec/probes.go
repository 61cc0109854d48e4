package podspec

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/lifecycled/lifecycled/settings"
)

// probeKinds are the probes of a container, each with the endpoint of
// lifecycled it should ask.
func probeKinds(c *Container) []struct {
	field, want string
	probe       *settings.KubeProbe
} {
	return []struct {
		field, want string
		probe       *settings.KubeProbe
	}{
		{"readinessProbe", "/readyz", c.ReadinessProbe},
		{"livenessProbe", "/livez", c.LivenessProbe},
		{"startupProbe", "/startupz", c.StartupProbe},
	}
}

// wrongEndpoint says why a probe must not ask lifecycled for got.
var wrongEndpoint = map[string]map[string]string{
	"readinessProbe": {
		"/livez":    "which stays 200 while lifecycled waits for dependencies and while it drains",
		"/startupz": "which stays 200 once the app has started, also while lifecycled drains",
	},
	"livenessProbe": {
		"/readyz":   "which fails while a dependency is down, while the app is not ready and during every drain: the kubelet would restart a container that is only waiting or stopping (a restart trap)",
		"/startupz": "which is 503 until the app has started: the kubelet would restart a container that is only waiting for its dependencies",
	},
	"startupProbe": {
		"/livez":  "which is 200 from the start, before the app runs",
		"/readyz": "which also fails whenever the app is briefly unready, and holds the containers after a native sidecar until it is ready",
	},
}

// target is where a probe goes.
type target struct {
	action string // httpGet, tcpSocket, grpc, exec
	port   int    // 0 when unknown
	host   string // httpGet.host, or the host of `lifecycled probe URL`
	path   string
	https  bool
	// inside is set for an exec probe that runs `lifecycled probe URL`
	// inside the container: it reaches loopback addresses.
	inside bool
}

func probeTarget(c *Container, p *settings.KubeProbe) (target, error) {
	switch {
	case p.HTTPGet != nil:
		port, err := p.HTTPGet.Port.Resolve(c.namedPort)
		return target{action: "httpGet", port: port, host: p.HTTPGet.Host, path: settings.ProbePath(p.HTTPGet.Path), https: strings.EqualFold(p.HTTPGet.Scheme, "HTTPS")}, err
	case p.TCPSocket != nil:
		port, err := p.TCPSocket.Port.Resolve(c.namedPort)
		return target{action: "tcpSocket", port: port}, err
	case p.GRPC != nil:
		return target{action: "grpc", port: p.GRPC.Port}, nil
	case p.Exec != nil:
		argv := p.Exec.Command
		t := target{action: "exec"}
		if len(argv) >= 3 && path.Base(argv[0]) == "lifecycled" && argv[1] == "probe" {
			if u, err := url.Parse(argv[len(argv)-1]); err == nil && u.Host != "" {
				t.inside = true
				t.host = u.Hostname()
				t.port, _ = strconv.Atoi(u.Port())
				t.path = u.Path
				switch u.Scheme {
				case "http", "https":
					t.action, t.https = "httpGet", u.Scheme == "https"
					if t.port == 0 {
						t.port = map[bool]int{false: 80, true: 443}[t.https]
					}
				case "tcp":
					t.action = "tcpSocket"
				}
			}
		}
		return t, nil
	}
	return target{}, nil
}

// ResolvePort is p's number, a name resolved against the container's
// ports as the kubelet does.
func (c *Container) ResolvePort(p settings.Port) (int, error) { return p.Resolve(c.namedPort) }

// namedPort resolves a probe's named port; it must be one of the
// container's ports, or the kubelet fails the probe.
func (c *Container) namedPort(name string) (int, error) {
	var names []string
	for _, cp := range c.Ports {
		if cp.Name == name {
			return cp.ContainerPort, nil
		}
		if cp.Name != "" {
			names = append(names, cp.Name)
		}
	}
	return 0, fmt.Errorf("port %q is not a named port of the container (its ports: %s): the kubelet fails every probe", name, orNone(names))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none named"
	}
	return strings.Join(s, ", ")
}

// listenAddr splits a --listen address into its host and port number.
func listenAddr(addr string) (host string, port int, ok bool) {
	if addr == "" {
		return "", 0, false
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, false
	}
	return h, n, true
}

func listenPort(addr string) (int, bool) {
	_, p, ok := listenAddr(addr)
	return p, ok
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isLocal(host string) bool { return host == "" || isLoopback(host) }

// checkProbes checks the container's probes against the endpoints
// lifecycled serves on --listen.
func (r *Report) checkProbes(spec *PodSpec, ch *Checked) {
	c, s := ch.Container, ch.Settings
	lhost, lport, listening := listenAddr(s.Listen)
	for _, k := range probeKinds(c) {
		if k.probe == nil {
			continue
		}
		t, err := probeTarget(c, k.probe)
		if err != nil {
			r.problem(c.Name, "%s: %v", k.field, err)
			continue
		}
		// The kubelet probes the pod's IP; an exec probe runs inside.
		if !t.inside && isLoopback(t.host) && !spec.HostNetwork {
			r.problem(c.Name, "%s has host %s: the kubelet probes from the node, where that is the node itself, not the pod; leave host unset",
				k.field, t.host)
		}
		onLifecycled := listening && t.port == lport && isLocal(t.host)
		if onLifecycled && !t.inside && t.host == "" && isLoopback(lhost) {
			r.problem(c.Name, "%s goes to port %d, but --listen %s answers on loopback only and the kubelet probes the pod's IP: listen on :%d",
				k.field, lport, s.Listen, lport)
		}
		switch {
		case onLifecycled && t.action == "httpGet":
			if t.https {
				r.problem(c.Name, "%s uses HTTPS, but lifecycled serves plain HTTP on %s", k.field, s.Listen)
			}
			got, _, _ := strings.Cut(t.path, "?")
			switch why, known := wrongEndpoint[k.field][got]; {
			case got == k.want:
			case known:
				r.problem(c.Name, "%s asks lifecycled for %s, %s; use %s", k.field, got, why, k.want)
			case got == "/metrics":
				r.problem(c.Name, "%s asks lifecycled for /metrics, which is always 200; use %s", k.field, k.want)
			default:
				r.problem(c.Name, "%s asks lifecycled (port %d) for %s, which it does not serve (404); use %s", k.field, lport, got, k.want)
			}
		case onLifecycled && t.action == "tcpSocket":
			if k.field != "livenessProbe" {
				r.problem(c.Name, "%s is a tcpSocket on lifecycled's port %d, which is open from start to exit whatever the app does; use httpGet path %s",
					k.field, lport, k.want)
			}
		case onLifecycled && t.action == "grpc":
			r.problem(c.Name, "%s is a gRPC probe, but lifecycled serves HTTP on port %d; use httpGet path %s", k.field, lport, k.want)
		case listening && t.action == "httpGet" && isEndpoint(t.path) && t.port != lport:
			r.problem(c.Name, "%s asks port %d for %s, but lifecycled listens on %s (port %d)", k.field, t.port, t.path, s.Listen, lport)
		case listening && k.field == "readinessProbe":
			r.problem(c.Name, "readinessProbe (%s) does not ask lifecycled's /readyz on port %d: the kubelet does not see lifecycled's readiness (dependencies, postStart, --ready, drain); use httpGet path /readyz port %d",
				t, lport, lport)
		}
	}
	if u, err := url.Parse(readyTarget(s)); listening && err == nil && u.Host != "" && isLocal(u.Hostname()) && u.Port() == strconv.Itoa(lport) {
		r.problem(c.Name, "--ready %s asks lifecycled's own port %d: its readiness would wait for itself and never come; point --ready at the app", readyTarget(s), lport)
	}
	if listening && c.ReadinessProbe == nil && !ch.Init && (ch.Sidecar || spec.RestartPolicy == "" || spec.RestartPolicy == "Always") {
		r.problem(c.Name, "--listen %s serves /readyz, but the container has no readinessProbe: the kubelet sends traffic before the app is ready; add readinessProbe httpGet path /readyz port %d",
			s.Listen, lport)
	}
}

// String describes where the probe goes, for a problem's text.
func (t target) String() string {
	switch t.action {
	case "httpGet":
		return fmt.Sprintf("httpGet port %d path %s", t.port, t.path)
	case "tcpSocket", "grpc":
		return fmt.Sprintf("%s port %d", t.action, t.port)
	}
	return t.action
}

func isEndpoint(p string) bool {
	p, _, _ = strings.Cut(p, "?")
	return p == "/readyz" || p == "/livez" || p == "/startupz"
}

// checkPorts checks that lifecycled's ports are not taken by another
// container: the containers of a pod share one network namespace.
func (r *Report) checkPorts(spec *PodSpec) {
	type use struct{ container, what string }
	uses := map[int][]use{}
	running := append(sidecars(spec), ptrs(spec.Containers)...)
	lc := map[string]*settings.Run{}
	for i := range r.Lifecycled {
		if s := r.Lifecycled[i].Settings; s != nil {
			lc[r.Lifecycled[i].Container.Name] = s
		}
	}
	for _, c := range running {
		for _, p := range c.Ports {
			uses[p.ContainerPort] = append(uses[p.ContainerPort], use{c.Name, "containerPort"})
		}
		if s := lc[c.Name]; s != nil {
			for _, l := range []struct{ flag, addr string }{{"--listen", s.Listen}, {"--admin-listen", s.AdminListen}} {
				if p, ok := listenPort(l.addr); ok {
					uses[p] = append(uses[p], use{c.Name, l.flag})
				}
			}
		}
	}
	reported := map[string]bool{}
	for _, c := range running {
		s := lc[c.Name]
		if s == nil {
			continue
		}
		for _, l := range []struct{ flag, addr string }{{"--listen", s.Listen}, {"--admin-listen", s.AdminListen}} {
			p, ok := listenPort(l.addr)
			if !ok {
				continue
			}
			for _, u := range uses[p] {
				switch {
				case u.container == c.Name && u.what != "containerPort" && u.what != l.flag:
					if !reported[c.Name+"/self"] {
						reported[c.Name+"/self"] = true
						r.problem(c.Name, "--listen and --admin-listen both use port %d: lifecycled cannot bind it twice", p)
					}
				case u.container != c.Name:
					pair := fmt.Sprint(p, min(c.Name, u.container), max(c.Name, u.container))
					if reported[pair] {
						continue
					}
					reported[pair] = true
					r.problem(c.Name, "%s %s: port %d is also %s of container %s, and the containers of a pod share one network namespace: one of them cannot bind it",
						l.flag, l.addr, p, u.what, u.container)
				}
			}
		}
	}
}

// sidecars are the pod's native sidecars, which run next to its
// containers.
func sidecars(spec *PodSpec) []*Container {
	var out []*Container
	for i := range spec.InitContainers {
		if spec.InitContainers[i].RestartPolicy == "Always" {
			out = append(out, &spec.InitContainers[i])
		}
	}
	return out
}

func ptrs(cs []Container) []*Container {
	out := make([]*Container, len(cs))
	for i := range cs {
		out[i] = &cs[i]
	}
	return out
}
