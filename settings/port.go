package settings

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lifecycled/lifecycled/probes"
)

// The port and path of the core/v1 handlers that kube.go decodes, read the
// same way by the run path and podspec: a named port resolves only in
// podspec, against the container's ports.

// Port is a core/v1 IntOrString port: a number, or the name of a
// container port.
type Port struct {
	Number int
	Name   string
}

// ParsePort reads a port as written: a whole number, else a name.
func ParsePort(s string) Port {
	if n, err := strconv.Atoi(s); err == nil {
		return Port{Number: n}
	}
	return Port{Name: s}
}

// UnmarshalYAML takes a number or a name.
func (p *Port) UnmarshalYAML(v *yaml.Node) error {
	*p = ParsePort(v.Value)
	return nil
}

// String is the port as written, a name quoted.
func (p Port) String() string {
	if p.Name != "" {
		return strconv.Quote(p.Name)
	}
	return strconv.Itoa(p.Number)
}

// PortResolver turns the name of a container port into its number.
type PortResolver func(name string) (int, error)

// errNamedPort is a named port resolved without the container's ports.
var errNamedPort = errors.New("named ports cannot be resolved outside the pod spec")

// Resolve returns the port's number; a name is resolved through ports,
// and is an error when ports is nil (the run path has no container).
func (p Port) Resolve(ports PortResolver) (int, error) {
	if p.Name == "" {
		return p.Number, nil
	}
	if ports == nil {
		return 0, errNamedPort
	}
	return ports(p.Name)
}

// ProbePath is an HTTPGetAction's path as the kubelet requests it: with a
// leading slash.
func ProbePath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "/" + p
	}
	return p
}

// The run path's reading: what lifecycled itself calls.

// localHost is the host lifecycled calls when a handler names none: it
// runs inside the pod, where the kubelet would use the pod's IP.
func localHost(h string) string {
	if h == "" {
		return "127.0.0.1"
	}
	return h
}

// URL is the URL lifecycled calls for the action.
func (g *HTTPGetAction) URL() *url.URL {
	scheme := strings.ToLower(g.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(localHost(g.Host), strconv.Itoa(g.Port.Number)), Path: ProbePath(g.Path)}
}

// target is the probe lifecycled runs for the handler.
func (h *ProbeHandler) target() probes.Target {
	switch {
	case h.Exec != nil:
		return probes.Target{Kind: probes.KindExec, Raw: "exec:" + execCommand(h.Exec.Command).Raw, Command: h.Exec.Command}
	case h.HTTPGet != nil:
		u := h.HTTPGet.URL()
		return probes.Target{Kind: probes.Kind(u.Scheme), Raw: u.String(), Host: u.Hostname(), Port: u.Port(), URL: u}
	case h.TCPSocket != nil:
		host, port := localHost(h.TCPSocket.Host), strconv.Itoa(h.TCPSocket.Port.Number)
		return probes.Target{Kind: probes.KindTCP, Raw: "tcp://" + net.JoinHostPort(host, port), Host: host, Port: port}
	}
	port := strconv.Itoa(h.GRPC.Port)
	t := probes.Target{Kind: probes.KindGRPC, Raw: "grpc://127.0.0.1:" + port, Host: "127.0.0.1", Port: port, Service: h.GRPC.Service}
	if t.Service != "" {
		t.Raw += "/" + t.Service
	}
	return t
}

// hook is the hook lifecycled runs for the handler.
func (h *LifecycleHandler) hook() Hook {
	switch {
	case h.Exec != nil:
		return Hook{Exec: execCommand(h.Exec.Command)}
	case h.HTTPGet != nil:
		return Hook{HTTP: h.HTTPGet.URL().String()}
	}
	return Hook{Sleep: time.Duration(h.Sleep.Seconds) * time.Second}
}

// strictly is a setting's decode on the run path: read Strict, then set
// what lifecycled calls.
func strictly[T any](read func(*kubeReader, *node, *T) error, set func(*T)) func(n *node) error {
	return func(n *node) error {
		var v T
		if err := read(&kubeReader{mode: Strict}, n, &v); err != nil {
			return err
		}
		set(&v)
		return nil
	}
}
