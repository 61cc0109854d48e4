package settings

import (
	"errors"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The parts of a core/v1 Probe and LifecycleHandler that the run path's
// decoder (file.go) and podspec's read the same way. The two decoders
// answer different questions: the run path's says what lifecycled itself
// will call, with its defaults filled in, and refuses what it cannot do;
// podspec's says what the kubelet will do with a manifest, as written (an
// unset host is the pod's IP, not 127.0.0.1), and never fails on what the
// kubelet accepts.

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
