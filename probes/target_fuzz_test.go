package probes

import (
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/lifecycled/lifecycled/internal/redact"
)

// FuzzParseTarget: whatever a user puts in --wait, --ready, `wait` or
// `probe`, a target that parses is one lifecycled can check as written: it
// prints as the input (the metric label and log name), parses again to the
// same value, has the fields its kind needs in a usable form (a port 1-65535,
// an absolute path, a request that can be built), runs a command only where
// commands are allowed; a target that does not parse is a one-line error
// naming it.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"tcp://db:5432", "TCP://db:5432/", "tcp://[::1]:80", "tcp://[fe80::1%25eth0]:80", "http://api/healthz",
		"http://api:8080/ready?full=1#frag", "https://user:pass@api:8443/healthz", "unix:///run/app.sock",
		"file:///tmp/with%20space", "file:///tmp/a%00b", "unix://run/app.sock", "dns://db.default.svc",
		"dns://localhost/", "grpc://api:9090/my.pkg.Service", "grpc://api:9090/a/b", "exec:test -f /tmp/ready",
		`exec:["cat","/tmp/ready"]`, "EXEC:[]", "exec:", "tcp://db:0", "tcp://db:65536", "http://api:/",
		"http:///x", "ftp://x", "db:5432", "", " ", "http://a b/", "http://[::1", "http://%zz/",
		"tcp://db:5432?x", "dns://db:53", "http://api:+80/", "tcp://db:0080", "http://0x7f.1/",
		"exec:[\n\"a\",\n1]", "file:///", "grpc://h:1/%2F", "http://h/%zz", "http://o'neil:p,w;(x)@api/",
		"http://u:p w@h/", "http://u:p%zz@h/", "http://h/?token=a b&x=1#access_token=t", "https://h/?X-Amz-Signature=s&sig=", "http://h/a;jsessionid=x/b?c",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, allowExec bool) {
		tg, err := ParseTarget(in, allowExec)
		if err != nil {
			msg := err.Error()
			if strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error for %q is not one line: %q", in, msg)
			}
			if !strings.Contains(msg, strconv.Quote(redact.URL(in))) {
				t.Fatalf("error for %q does not name it as String would show it: %q", in, msg)
			}
			if shown := redact.URL(in); shown != in {
				// The reason is the masked target's: whatever it quotes
				// of the target, it quotes of the masked one.
				if _, reason := parseTarget(shown, allowExec); reason != "" && !strings.HasSuffix(msg, ": "+reason) {
					t.Fatalf("error for %q: %q, not the masked target's reason %q", in, msg, reason)
				}
			}
			return
		}
		if tg.Raw != in {
			t.Fatalf("ParseTarget(%q).Raw = %q", in, tg.Raw)
		}
		checkShown(t, in, tg)
		again, err := ParseTarget(tg.Raw, allowExec)
		if err != nil {
			t.Fatalf("%q parsed once, not twice: %v", in, err)
		}
		if !sameTarget(tg, again) {
			t.Fatalf("%q parses to %+v, then to %+v", in, tg, again)
		}
		checkTargetFields(t, in, tg, allowExec)
	})
}

// checkShown: String is the input, but for its secrets, which it never
// shows: the password and the values of the parameters named like
// secrets (redact.URL). What it shows parses to the same target with
// those replaced. A URL inside the target (in an exec command, or a URL
// target's path, query or fragment) has its secrets masked like any other
// text's: only the target's own part is checked field by field.
func checkShown(t *testing.T, in string, tg Target) {
	t.Helper()
	if want := redact.URL(in); tg.String() != want {
		t.Fatalf("ParseTarget(%q).String() = %q, want %q", in, tg.String(), want)
	}
	if tg.URL == nil {
		return
	}
	nested := strings.Contains(in[strings.Index(in, "://")+len("://"):], "://")
	pw, hasPW := tg.URL.User.Password()
	secrets := false
	// Every parameter as redact reads it: url.Query drops the pairs it
	// cannot unescape ("%Sig="), which redact still masks.
	for _, kv := range strings.Split(tg.URL.RawQuery, "&") {
		name, _, _ := strings.Cut(kv, "=")
		if u, err := url.QueryUnescape(name); err == nil {
			name = u
		}
		secrets = secrets || redact.SecretName(name)
	}
	// redact masks a secret-named parameter wherever it stands after the
	// host, a path's ";jsessionid=" or "&session=" too.
	pathParams := strings.ContainsAny(tg.URL.EscapedPath(), ";&")
	if !hasPW && !secrets && !nested && !pathParams && !strings.ContainsAny(in, "#;") {
		if tg.String() != in {
			t.Fatalf("ParseTarget(%q).String() = %q", in, tg.String())
		}
		return
	}
	shown, err := ParseTarget(tg.String(), false)
	if err != nil {
		t.Fatalf("%q shows as %q, which does not parse: %v", in, tg.String(), err)
	}
	if hasPW {
		if p, _ := shown.URL.User.Password(); p != redact.Mask || shown.URL.User.Username() != tg.URL.User.Username() {
			t.Fatalf("%q shows as %q: user info %v", in, tg.String(), shown.URL.User)
		}
	}
	for name, vs := range shown.URL.Query() {
		for _, v := range vs {
			if redact.SecretName(name) && v != redact.Mask && v != "" {
				t.Fatalf("%q (password %q) shows as %q: %s=%q", in, pw, tg.String(), name, v)
			}
		}
	}
	// A nested URL's password and a path parameter (;jsessionid=) are
	// masked in the path.
	if shown.URL.Host != tg.URL.Host || !nested && !strings.Contains(in, ";") && !pathParams && shown.URL.Path != tg.URL.Path {
		t.Fatalf("%q shows as %q, request URL %v, want %v", in, tg.String(), shown.URL, tg.URL)
	}
}

// checkTargetFields checks that tg has what its kind's checker needs.
func checkTargetFields(t *testing.T, in string, tg Target, allowExec bool) {
	t.Helper()
	port := func() {
		n, err := strconv.Atoi(tg.Port)
		if err != nil || n < 1 || n > 65535 {
			t.Fatalf("%q: port %q is not 1-65535", in, tg.Port)
		}
	}
	switch tg.Kind {
	case KindTCP, KindGRPC:
		if tg.Host == "" {
			t.Fatalf("%q: no host", in)
		}
		port()
		h, p, err := net.SplitHostPort(net.JoinHostPort(tg.Host, tg.Port))
		if err != nil || h != tg.Host || p != tg.Port {
			t.Fatalf("%q: host %q and port %q make no dial address", in, tg.Host, tg.Port)
		}
		if strings.Contains(tg.Service, "/") {
			t.Fatalf("%q: service %q", in, tg.Service)
		}
	case KindHTTP, KindHTTPS:
		if tg.URL == nil || tg.URL.Scheme != string(tg.Kind) || tg.Host == "" || tg.URL.Hostname() != tg.Host {
			t.Fatalf("%q: bad request URL %v (host %q)", in, tg.URL, tg.Host)
		}
		if tg.Port != "" {
			port()
		}
		if tg.URL.Fragment != "" || !strings.HasPrefix(tg.URL.Path, "/") {
			t.Fatalf("%q: request URL %v", in, tg.URL)
		}
		if _, err := http.NewRequest(http.MethodGet, tg.URL.String(), nil); err != nil {
			t.Fatalf("%q parses, but no request can be made of it: %v", in, err)
		}
	case KindUnix, KindFile:
		if !strings.HasPrefix(tg.Path, "/") || tg.Path == "/" {
			t.Fatalf("%q: path %q is not an absolute file path", in, tg.Path)
		}
		if strings.IndexByte(tg.Path, 0) >= 0 {
			t.Fatalf("%q: path %q holds a NUL byte, which no system call takes", in, tg.Path)
		}
	case KindDNS:
		if tg.Name == "" || strings.IndexByte(tg.Name, 0) >= 0 {
			t.Fatalf("%q: name %q", in, tg.Name)
		}
	case KindExec:
		if !allowExec {
			t.Fatalf("%q: an exec target where commands are not allowed", in)
		}
		if len(tg.Command) == 0 || tg.Command[0] == "" {
			t.Fatalf("%q: no command", in)
		}
	default:
		t.Fatalf("%q: unknown kind %q", in, tg.Kind)
	}
}

// sameTarget compares two targets, the request URLs (and their user
// info) by value.
func sameTarget(a, b Target) bool { return reflect.DeepEqual(a, b) }
