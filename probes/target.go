// Package probes checks whether the things a container depends on are up: TCP
// and Unix sockets, HTTP(S) endpoints, files, DNS names, gRPC health services
// and commands. It provides the one-shot Check used by `lifecycled probe`, the
// retrying WaitAll behind --wait, the kubelet-style Prober behind --ready, and
// the Health state served as /readyz, /livez and /startupz.
//
// Every check has the same shape, as the Prometheus blackbox exporter's
// probers do: one file per target kind, the deadline always from the context.
package probes

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/supervisor"
)

// Kind is the scheme of a target; it selects the checker.
type Kind string

// The target kinds of CONTRACT section 4.
const (
	KindTCP   Kind = "tcp"
	KindHTTP  Kind = "http"
	KindHTTPS Kind = "https"
	KindUnix  Kind = "unix"
	KindFile  Kind = "file"
	KindDNS   Kind = "dns"
	KindGRPC  Kind = "grpc"
	KindExec  Kind = "exec"
)

// Target is a parsed TARGET argument. Only the fields of its Kind are set.
type Target struct {
	// Kind selects the checker.
	Kind Kind
	// Raw is the target exactly as the user wrote it, password included.
	Raw string

	// Host and Port are set for tcp, http, https and grpc (Port may be empty
	// for http and https, meaning the scheme's default).
	Host string
	Port string
	// URL is the request URL of http and https targets.
	URL *url.URL
	// Path is the absolute path of unix and file targets.
	Path string
	// Name is the DNS name of dns targets.
	Name string
	// Service is the gRPC service whose health is asked; empty means the
	// server as a whole, as in grpc.health.v1.
	Service string
	// Command is the argv of exec targets: the exec form as written, or
	// ["/bin/sh", "-c", COMMAND] for the shell form.
	Command []string
}

// String returns the target as the user wrote it, except for its secrets:
// a password (http://user:PASSWORD@host/) and the value of a query
// parameter named like a secret (?token=VALUE) show as "xxxxx", as
// url.URL.Redacted has it (redact.URL). It is the metric label and the name
// in logs and errors: users can grep for what they typed, and /metrics,
// which anyone who reaches --listen can read, never serves a credential.
func (t Target) String() string {
	return redact.URL(t.Raw)
}

// ParseTarget parses one TARGET of CONTRACT section 4. exec targets are only
// accepted when allowExec is set, because only --ready may run commands: a
// --wait or `wait` target is data from a config map, not a thing to execute.
// The error is one line naming the target (its secrets masked, as String
// shows them) and what is wrong with it, fit to be printed as is before
// exiting 2.
func ParseTarget(s string, allowExec bool) (Target, error) {
	t, reason := parseTarget(s, allowExec)
	if reason != "" {
		shown := redact.URL(s)
		if shown != s {
			// The reason may quote the part that is wrong ("invalid URL
			// escape "%zz""), a piece of a password included: it is the
			// masked target's reason, or, if that one parses, the masked
			// part was what is wrong.
			if _, reason = parseTarget(shown, allowExec); reason == "" {
				reason = "a password or a secret parameter holds a character a URL cannot (percent-encode it)"
			}
		}
		return Target{}, fmt.Errorf("bad target %q: %s", shown, reason)
	}
	t.Raw = s
	return t, nil
}

// parseTarget returns the target or, when s is malformed, why.
func parseTarget(s string, allowExec bool) (Target, string) {
	if strings.TrimSpace(s) == "" {
		return Target{}, "empty target"
	}
	// exec:COMMAND is not a URL (the command may hold anything), so it is
	// recognised before url.Parse can reject or mangle it.
	if rest, ok := cutPrefixFold(s, "exec:"); ok {
		if !allowExec {
			return Target{}, "exec targets are only allowed for readiness probes (--ready)"
		}
		argv, _, err := supervisor.ParseCommand(rest)
		if err != nil {
			return Target{}, err.Error()
		}
		return Target{Kind: KindExec, Command: argv}, ""
	}
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return Target{}, "missing scheme (want tcp://, http://, https://, unix://, file://, dns://, grpc:// or exec:)"
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole target, which ParseTarget names already
		}
		return Target{}, err.Error()
	}
	switch Kind(strings.ToLower(scheme)) {
	case KindTCP:
		return parseHostPort(KindTCP, u)
	case KindGRPC:
		return parseGRPC(u)
	case KindHTTP, KindHTTPS:
		return parseHTTP(u)
	case KindUnix:
		return parsePath(KindUnix, u)
	case KindFile:
		return parsePath(KindFile, u)
	case KindDNS:
		return parseDNS(u)
	default:
		return Target{}, fmt.Sprintf("unknown scheme %q (want tcp, http, https, unix, file, dns, grpc or exec)", scheme)
	}
}

// parseHostPort parses the authority of tcp:// and grpc:// targets, which need
// both a host and a port: there is no default port for an arbitrary service.
func parseHostPort(kind Kind, u *url.URL) (Target, string) {
	if u.User != nil {
		return Target{}, "unexpected user info"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Target{}, "unexpected query or fragment"
	}
	if kind == KindTCP && u.Path != "" && u.Path != "/" {
		return Target{}, fmt.Sprintf("unexpected path %q", u.Path)
	}
	if u.Host == "" {
		return Target{}, "missing host and port"
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return Target{}, "missing port"
	}
	if host == "" {
		return Target{}, "missing host"
	}
	if reason := checkHostName(host); reason != "" {
		return Target{}, reason
	}
	if reason := checkPort(port); reason != "" {
		return Target{}, reason
	}
	return Target{Kind: kind, Host: host, Port: port}, ""
}

// parseGRPC parses grpc://HOST:PORT[/SERVICE].
func parseGRPC(u *url.URL) (Target, string) {
	t, reason := parseHostPort(KindGRPC, u)
	if reason != "" {
		return t, reason
	}
	t.Service = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(t.Service, "/") {
		return Target{}, fmt.Sprintf("bad service name %q: a service name has no '/'", t.Service)
	}
	return t, ""
}

// parseHTTP parses http:// and https:// targets. An empty path means "/", as
// curl and the kubelet read it.
func parseHTTP(u *url.URL) (Target, string) {
	if u.Host == "" {
		return Target{}, "missing host"
	}
	if u.Hostname() == "" {
		return Target{}, "missing host"
	}
	if reason := checkHostName(u.Hostname()); reason != "" {
		return Target{}, reason
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		if reason := checkPort(port); reason != "" {
			return Target{}, reason
		}
	}
	req := *u
	req.Scheme = strings.ToLower(u.Scheme)
	req.Fragment, req.RawFragment = "", "" // never sent; keeps the request URL honest in errors
	if req.Path == "" {
		req.Path = "/"
	}
	return Target{Kind: Kind(req.Scheme), Host: req.Hostname(), Port: req.Port(), URL: &req}, ""
}

// parsePath parses unix:///PATH and file:///PATH. The path must be absolute,
// because a relative one would depend on the working directory of whoever
// runs lifecycled; `unix://run/x.sock` (two slashes) is the usual typo and
// parses as host "run", so it is named as such.
func parsePath(kind Kind, u *url.URL) (Target, string) {
	if u.Host != "" {
		return Target{}, fmt.Sprintf("path must be absolute: want %s:///PATH, not host %q", kind, u.Host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Target{}, "unexpected query or fragment"
	}
	if u.Path == "" || u.Path == "/" {
		return Target{}, "empty path"
	}
	if strings.IndexByte(u.Path, 0) >= 0 {
		// %00 decodes to a byte no system call takes: caught here rather
		// than as a target that is down forever.
		return Target{}, "path holds a NUL byte (%00)"
	}
	return Target{Kind: kind, Path: u.Path}, ""
}

// parseDNS parses dns://NAME.
func parseDNS(u *url.URL) (Target, string) {
	if u.User != nil {
		return Target{}, "unexpected user info"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Target{}, "unexpected query or fragment"
	}
	if u.Path != "" && u.Path != "/" {
		return Target{}, fmt.Sprintf("unexpected path %q", u.Path)
	}
	if u.Port() != "" || strings.HasSuffix(u.Host, ":") {
		return Target{}, "unexpected port: a dns target is a name only"
	}
	name := u.Hostname()
	if name == "" {
		return Target{}, "missing name"
	}
	if reason := checkHostName(name); reason != "" {
		return Target{}, reason
	}
	return Target{Kind: KindDNS, Name: name}, ""
}

// checkHostName returns why host (an IP literal or a DNS name, as url.Parse
// left it) can name no host, or "". url.Parse lets a host hold the URL
// sub-delimiters and even quotes ("!$&'()*+,;=<>\""): no resolver takes
// them, so a target holding one would only be down forever, and in a log
// line it would read as the end of the URL.
func checkHostName(host string) string {
	if strings.Contains(host, ":") {
		return "" // an IPv6 literal, checked by url.Parse (its zone may hold anything)
	}
	for _, r := range host {
		switch {
		case r >= 0x80, 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '.', r == '_':
			continue
		}
		return fmt.Sprintf("host %q is not a host name or IP address (letters, digits, '-', '.' and '_' only)", host)
	}
	return ""
}

// checkPort returns why port is not a TCP port number, or "".
func checkPort(port string) string {
	if port == "" {
		return "missing port"
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Sprintf("bad port %q", port)
	}
	if n < 1 || n > 65535 {
		return fmt.Sprintf("port %d out of range 1-65535", n)
	}
	return ""
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case, so that EXEC: and
// Exec: are read like the URL schemes, which are case-insensitive.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
