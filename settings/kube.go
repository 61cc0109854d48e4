package settings

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The core/v1 Probe and LifecycleHandler, decoded once for the run path
// (--config) and for podspec (explain -f). The two read the same fields
// into the same types and differ only in how strictly: see Strictness.
// What the values then mean differs too: the run path fills in what
// lifecycled itself will call (an unset host is 127.0.0.1, it runs inside
// the pod), podspec keeps them as written (an unset host is the pod's IP).

// Strictness says how a core/v1 shape is read.
type Strictness int

const (
	// Strict reads lifecycled's own config file: a field lifecycled does
	// not know, a value it cannot call (a named port, httpHeaders, an empty
	// command) and a value of the wrong shape are errors in lifecycled's
	// words, naming the line and the field.
	Strict Strictness = iota
	// AsKubelet reads a manifest as the kubelet gets it: other fields are
	// skipped, and only a value of the wrong shape is an error, the YAML
	// library's own (*yaml.TypeError, which its Decode collects).
	AsKubelet
)

// KubeProbe is the part of a core/v1 Probe both read: the handler, and
// terminationGracePeriodSeconds (AsKubelet only). On the run path its
// timing fields are settings of their own (--ready-period...), which a
// flag can override one by one.
type KubeProbe struct {
	ProbeHandler
	// TerminationGracePeriodSeconds replaces the pod's when the kubelet
	// kills the container for failing this (liveness or startup) probe.
	TerminationGracePeriodSeconds *int64
}

// ProbeHandler is core/v1 ProbeHandler: exec, httpGet, tcpSocket or grpc.
type ProbeHandler struct {
	Exec      *ExecAction
	HTTPGet   *HTTPGetAction
	TCPSocket *TCPSocketAction
	GRPC      *GRPCAction
}

// LifecycleHandler is core/v1 LifecycleHandler without the deprecated
// tcpSocket: exec, httpGet or sleep.
type LifecycleHandler struct {
	Exec    *ExecAction
	HTTPGet *HTTPGetAction
	Sleep   *SleepAction
}

// ExecAction is core/v1 ExecAction.
type ExecAction struct{ Command []string }

// HTTPGetAction is core/v1 HTTPGetAction without headers.
type HTTPGetAction struct {
	Path   string
	Port   Port
	Host   string
	Scheme string
}

// TCPSocketAction is core/v1 TCPSocketAction.
type TCPSocketAction struct {
	Port Port
	Host string
}

// GRPCAction is core/v1 GRPCAction: its port is a number only.
type GRPCAction struct {
	Port    int
	Service string
}

// SleepAction is core/v1 SleepAction.
type SleepAction struct{ Seconds int64 }

// UnmarshalYAML reads the probe AsKubelet.
func (p *KubeProbe) UnmarshalYAML(n *yaml.Node) error {
	r := kubeReader{mode: AsKubelet}
	return r.done(r.probe(&node{Node: n}, p))
}

// UnmarshalYAML reads the handler AsKubelet.
func (h *LifecycleHandler) UnmarshalYAML(n *yaml.Node) error {
	r := kubeReader{mode: AsKubelet}
	return r.done(r.lifecycleHandler(&node{Node: n}, h))
}

// kubeReader reads core/v1 shapes in one Strictness.
type kubeReader struct {
	mode Strictness
	// shape are the YAML library's errors about values of the wrong shape
	// (AsKubelet), which it reports together, as its Decode does.
	shape []string
}

// done is err, or the shape errors as the YAML library reports them.
func (r *kubeReader) done(err error) error {
	if err == nil && len(r.shape) > 0 {
		return &yaml.TypeError{Errors: r.shape}
	}
	return err
}

// decode reads n into v with the YAML library (AsKubelet), keeping its
// shape errors for done.
func (r *kubeReader) decode(n *node, v any) error {
	var te *yaml.TypeError
	if err := n.Decode(v); errors.As(err, &te) {
		r.shape = append(r.shape, te.Errors...)
	} else if err != nil {
		return err
	}
	return nil
}

// fields returns the fields of the mapping n that are in known, null ones
// left out. Strict: another field is an error naming it. AsKubelet: others
// are skipped and merge keys (<<) taken, as the YAML library decodes a
// struct; nil for a value that is not a mapping.
func (r *kubeReader) fields(n *node, known ...string) (map[string]*node, error) {
	if r.mode == Strict {
		return n.fields(known...)
	}
	var m map[string]yaml.Node
	if err := r.decode(n, &m); err != nil || m == nil {
		return nil, err
	}
	out := map[string]*node{}
	for _, k := range known {
		if v, ok := m[k]; ok {
			if v := resolve(&v); v.Tag != "!!null" {
				out[k] = &node{v, n.key + "." + k}
			}
		}
	}
	return out, nil
}

// str reads a single value.
func (r *kubeReader) str(n *node, s *string) error {
	if n == nil {
		return nil
	}
	if r.mode == AsKubelet {
		return r.decode(n, s)
	}
	v, err := n.scalar()
	*s = v
	return err
}

// probeHandlerKinds are the fields of a ProbeHandler.
var probeHandlerKinds = []string{"exec", "httpGet", "tcpSocket", "grpc"}

// probe reads a core/v1 Probe's handler: exactly one of exec, httpGet,
// tcpSocket, grpc (Strict), in the order written. Its other fields are
// left to the walker of the config file (Strict), or skipped but for
// terminationGracePeriodSeconds (AsKubelet).
func (r *kubeReader) probe(n *node, p *KubeProbe) error {
	*p = KubeProbe{}
	var kinds []*node
	if r.mode == Strict {
		if n.Kind != yaml.MappingNode {
			return n.errorf("want a mapping, not %s", n.kind())
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, &node{resolve(n.Content[i+1]), n.key + "." + n.Content[i].Value}
			if v.Tag != "!!null" && (k == "exec" || k == "httpGet" || k == "tcpSocket" || k == "grpc") {
				kinds = append(kinds, v)
			}
		}
	} else {
		f, err := r.fields(n, append(probeHandlerKinds, "terminationGracePeriodSeconds")...)
		if err != nil {
			return err
		}
		if t := f["terminationGracePeriodSeconds"]; t != nil {
			if err := r.decode(t, &p.TerminationGracePeriodSeconds); err != nil {
				return err
			}
		}
		for _, k := range probeHandlerKinds {
			if f[k] != nil {
				kinds = append(kinds, f[k])
			}
		}
	}
	h := &p.ProbeHandler
	for _, v := range kinds {
		var err error
		switch v.key[strings.LastIndex(v.key, ".")+1:] {
		case "exec":
			h.Exec, err = r.exec(v)
		case "httpGet":
			h.HTTPGet, err = r.httpGet(v)
		case "tcpSocket":
			h.TCPSocket, err = r.tcpSocket(v)
		case "grpc":
			h.GRPC, err = r.grpc(v)
		}
		if err != nil {
			return err
		}
	}
	if r.mode == Strict && len(kinds) != 1 {
		return n.errorf("give exactly one of exec, httpGet, tcpSocket, grpc")
	}
	return nil
}

// lifecycleHandler reads a core/v1 LifecycleHandler: exactly one of exec,
// httpGet, sleep (Strict).
func (r *kubeReader) lifecycleHandler(n *node, h *LifecycleHandler) error {
	*h = LifecycleHandler{}
	f, err := r.fields(n, "exec", "httpGet", "tcpSocket", "sleep")
	if err != nil || f == nil {
		return err
	}
	if r.mode == Strict {
		if f["tcpSocket"] != nil {
			return f["tcpSocket"].errorf("not supported as a lifecycle handler (Kubernetes deprecated it)")
		}
		if len(f) != 1 {
			return n.errorf("give exactly one of exec, httpGet, sleep")
		}
	}
	if e := f["exec"]; e != nil {
		if h.Exec, err = r.exec(e); err != nil {
			return err
		}
	}
	if g := f["httpGet"]; g != nil {
		if h.HTTPGet, err = r.httpGet(g); err != nil {
			return err
		}
	}
	if s := f["sleep"]; s != nil {
		h.Sleep = &SleepAction{}
		sf, err := r.fields(s, "seconds")
		if err != nil || sf == nil {
			return err
		}
		sec := sf["seconds"]
		switch {
		case r.mode == AsKubelet:
			if sec != nil {
				return r.decode(sec, &h.Sleep.Seconds)
			}
		case sec == nil:
			return fmt.Errorf("line %d: %s.sleep.seconds: required", n.Line, n.key)
		default:
			i, err := sec.secondsInt()
			h.Sleep.Seconds = i
			return err
		}
	}
	return nil
}

func (r *kubeReader) exec(n *node) (*ExecAction, error) {
	e := &ExecAction{}
	f, err := r.fields(n, "command")
	if err != nil || f == nil {
		return e, err
	}
	c := f["command"]
	if r.mode == AsKubelet {
		if c != nil {
			err = r.decode(c, &e.Command)
		}
		return e, err
	}
	if c != nil {
		if e.Command, err = c.strings(); err != nil {
			return nil, err
		}
	}
	if len(e.Command) == 0 || e.Command[0] == "" {
		return nil, fmt.Errorf("line %d: %s.command: empty", n.Line, n.key)
	}
	return e, nil
}

func (r *kubeReader) httpGet(n *node) (*HTTPGetAction, error) {
	g := &HTTPGetAction{}
	f, err := r.fields(n, "path", "port", "host", "scheme", "httpHeaders")
	if err != nil || f == nil {
		return g, err
	}
	if r.mode == Strict && f["httpHeaders"] != nil {
		return nil, f["httpHeaders"].errorf("not supported")
	}
	if s := f["scheme"]; s != nil {
		if err := r.str(s, &g.Scheme); err != nil {
			return nil, err
		}
		if v := strings.ToLower(g.Scheme); r.mode == Strict && v != "http" && v != "https" {
			return nil, s.errorf("%q: want HTTP or HTTPS", g.Scheme)
		}
	}
	if err := r.endpoint(n, f, &g.Port, &g.Host); err != nil {
		return nil, err
	}
	return g, r.str(f["path"], &g.Path)
}

func (r *kubeReader) tcpSocket(n *node) (*TCPSocketAction, error) {
	t := &TCPSocketAction{}
	f, err := r.fields(n, "port", "host")
	if err != nil || f == nil {
		return t, err
	}
	return t, r.endpoint(n, f, &t.Port, &t.Host)
}

func (r *kubeReader) grpc(n *node) (*GRPCAction, error) {
	g := &GRPCAction{}
	f, err := r.fields(n, "port", "service")
	if err != nil || f == nil {
		return g, err
	}
	if p := f["port"]; r.mode == AsKubelet && p != nil {
		err = r.decode(p, &g.Port)
	} else if r.mode == Strict {
		var port Port
		err = r.endpoint(n, f, &port, nil)
		g.Port = port.Number
	}
	if err != nil {
		return nil, err
	}
	return g, r.str(f["service"], &g.Service)
}

// endpoint reads the port and host (when host is not nil) among the
// fields f of n. Strict: the port is required and a number (a named port
// needs the container's port list, which lifecycled does not have).
func (r *kubeReader) endpoint(n *node, f map[string]*node, port *Port, host *string) error {
	p := f["port"]
	switch {
	case r.mode == AsKubelet:
		if p != nil {
			if err := r.decode(p, port); err != nil {
				return err
			}
		}
	case p == nil:
		return fmt.Errorf("line %d: %s.port: required", n.Line, n.key)
	default:
		s, err := p.scalar()
		if err != nil {
			return err
		}
		*port = ParsePort(s)
		if i, err := port.Resolve(nil); err != nil || i < 1 || i > 65535 {
			return p.errorf("%q: want a number 1-65535 (%v)", s, errNamedPort)
		}
	}
	if host == nil {
		return nil
	}
	return r.str(f["host"], host)
}
