package inject

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lifecycled/lifecycled/podspec"
	"github.com/lifecycled/lifecycled/settings"
)

// probe is the part of a core/v1 Probe inject moves into lifecycled's
// flags.
type probe struct {
	HTTPGet *struct {
		Path        string        `yaml:"path"`
		Port        settings.Port `yaml:"port"`
		Host        string        `yaml:"host"`
		Scheme      string        `yaml:"scheme"`
		HTTPHeaders []yaml.Node   `yaml:"httpHeaders"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port settings.Port `yaml:"port"`
		Host string        `yaml:"host"`
	} `yaml:"tcpSocket"`
	GRPC *struct {
		Port    int     `yaml:"port"`
		Service *string `yaml:"service"`
	} `yaml:"grpc"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	InitialDelaySeconds *int64 `yaml:"initialDelaySeconds"`
	PeriodSeconds       *int64 `yaml:"periodSeconds"`
	TimeoutSeconds      *int64 `yaml:"timeoutSeconds"`
	SuccessThreshold    *int64 `yaml:"successThreshold"`
	FailureThreshold    *int64 `yaml:"failureThreshold"`
}

// probeActions are the keys of a Probe that say what it checks; the
// others say when and how often, and stay on the kubelet's probe.
var probeActions = map[string]bool{"httpGet": true, "tcpSocket": true, "grpc": true, "exec": true}

// probeFlags are lifecycled's flags (prefix ready or live) for the
// container's probe n, with the kubelet's defaults where the probe has no
// value: lifecycled probes the app as the kubelet did, from inside the
// container.
func probeFlags(c *podspec.Container, n *yaml.Node, prefix string) ([]string, error) {
	var p probe
	if err := n.Decode(&p); err != nil {
		return nil, err
	}
	host := func(h string) string {
		if h == "" {
			return "127.0.0.1" // the kubelet's pod IP, seen from inside
		}
		return h
	}
	var target string
	switch {
	case p.HTTPGet != nil:
		if len(p.HTTPGet.HTTPHeaders) > 0 {
			return nil, fmt.Errorf("httpGet.httpHeaders, which lifecycled's --%s does not send", prefix)
		}
		port, err := c.ResolvePort(p.HTTPGet.Port)
		if err != nil {
			return nil, err
		}
		scheme := strings.ToLower(p.HTTPGet.Scheme)
		if scheme == "" {
			scheme = "http"
		}
		target = fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host(p.HTTPGet.Host), strconv.Itoa(port)), settings.ProbePath(p.HTTPGet.Path))
	case p.TCPSocket != nil:
		port, err := c.ResolvePort(p.TCPSocket.Port)
		if err != nil {
			return nil, err
		}
		target = "tcp://" + net.JoinHostPort(host(p.TCPSocket.Host), strconv.Itoa(port))
	case p.GRPC != nil:
		target = "grpc://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.GRPC.Port))
		if p.GRPC.Service != nil && *p.GRPC.Service != "" {
			target += "/" + *p.GRPC.Service
		}
	case p.Exec != nil && len(p.Exec.Command) > 0:
		b, err := json.Marshal(p.Exec.Command)
		if err != nil {
			return nil, err
		}
		target = "exec:" + string(b)
	default:
		return nil, fmt.Errorf("no httpGet, tcpSocket, grpc or exec")
	}
	flags := []string{"--" + prefix, target}
	// The kubelet's defaults where lifecycled's differ or the probe says.
	seconds := func(flag string, v *int64, kubelet, ours int64) {
		n := kubelet
		if v != nil {
			n = *v
		}
		if n != ours {
			flags = append(flags, "--"+prefix+"-"+flag, strconv.FormatInt(n, 10)+"s")
		}
	}
	count := func(flag string, v *int64, ours int64) {
		if v != nil && *v != ours {
			flags = append(flags, "--"+prefix+"-"+flag, strconv.FormatInt(*v, 10))
		}
	}
	seconds("period", p.PeriodSeconds, 10, 1)
	seconds("timeout", p.TimeoutSeconds, 1, 1)
	seconds("initial-delay", p.InitialDelaySeconds, 0, 0)
	count("success-threshold", p.SuccessThreshold, 1)
	count("failure-threshold", p.FailureThreshold, 3)
	return flags, nil
}

// endpointProbe is the kubelet's probe n pointed at lifecycled's path on
// port: the same timing, an httpGet instead of its check.
func endpointProbe(n *yaml.Node, path string, port int) *yaml.Node {
	out := mapping("httpGet", mapping("path", path, "port", port))
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !probeActions[n.Content[i].Value] {
				out.Content = append(out.Content, n.Content[i], n.Content[i+1])
			}
		}
	}
	return out
}
