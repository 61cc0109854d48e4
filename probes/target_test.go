package probes

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTargetGood(t *testing.T) {
	tests := []struct {
		in   string
		want Target // Raw and URL are checked apart
		url  string // the request URL, for http and https
	}{
		{in: "tcp://db:5432", want: Target{Kind: KindTCP, Host: "db", Port: "5432"}},
		{in: "TCP://db:5432/", want: Target{Kind: KindTCP, Host: "db", Port: "5432"}},
		{in: "tcp://[::1]:80", want: Target{Kind: KindTCP, Host: "::1", Port: "80"}},
		{in: "tcp://127.0.0.1:65535", want: Target{Kind: KindTCP, Host: "127.0.0.1", Port: "65535"}},
		{in: "http://api/healthz", want: Target{Kind: KindHTTP, Host: "api"}, url: "http://api/healthz"},
		{in: "http://api:8080", want: Target{Kind: KindHTTP, Host: "api", Port: "8080"}, url: "http://api:8080/"},
		{in: "http://api:8080/ready?full=1#frag", want: Target{Kind: KindHTTP, Host: "api", Port: "8080"}, url: "http://api:8080/ready?full=1"},
		{in: "https://api:8443/healthz", want: Target{Kind: KindHTTPS, Host: "api", Port: "8443"}, url: "https://api:8443/healthz"},
		{in: "unix:///run/app.sock", want: Target{Kind: KindUnix, Path: "/run/app.sock"}},
		{in: "file:///tmp/ready", want: Target{Kind: KindFile, Path: "/tmp/ready"}},
		{in: "file:///tmp/with%20space", want: Target{Kind: KindFile, Path: "/tmp/with space"}},
		{in: "dns://db.default.svc.cluster.local", want: Target{Kind: KindDNS, Name: "db.default.svc.cluster.local"}},
		{in: "dns://localhost/", want: Target{Kind: KindDNS, Name: "localhost"}},
		{in: "grpc://api:9090", want: Target{Kind: KindGRPC, Host: "api", Port: "9090"}},
		{in: "grpc://api:9090/", want: Target{Kind: KindGRPC, Host: "api", Port: "9090"}},
		{in: "grpc://api:9090/my.pkg.Service", want: Target{Kind: KindGRPC, Host: "api", Port: "9090", Service: "my.pkg.Service"}},
		{in: "exec:test -f /tmp/ready", want: Target{Kind: KindExec, Command: []string{"/bin/sh", "-c", "test -f /tmp/ready"}}},
		{in: `exec:["cat", "/tmp/ready"]`, want: Target{Kind: KindExec, Command: []string{"cat", "/tmp/ready"}}},
		{in: `exec: [ "true" ]`, want: Target{Kind: KindExec, Command: []string{"true"}}},
		// Not JSON, so the shell form, as in a Dockerfile.
		{in: "exec:[ -f /tmp/ready ]", want: Target{Kind: KindExec, Command: []string{"/bin/sh", "-c", "[ -f /tmp/ready ]"}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTarget(tt.in, true)
			require.NoError(t, err)
			assert.Equal(t, tt.in, got.Raw)
			assert.Equal(t, tt.in, got.String())
			if tt.url != "" {
				require.NotNil(t, got.URL)
				assert.Equal(t, tt.url, got.URL.String())
			} else {
				assert.Nil(t, got.URL)
			}
			got.Raw, got.URL = "", nil
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseTargetBad(t *testing.T) {
	tests := []struct {
		in        string
		allowExec bool
		reason    string
	}{
		{in: "", reason: "empty target"},
		{in: "db:5432", reason: "missing scheme"},
		{in: "ftp://host/file", reason: `unknown scheme "ftp"`},
		{in: "tcp://db", reason: "missing port"},
		{in: "tcp://db:", reason: "missing port"},
		{in: "tcp://:5432", reason: "missing host"},
		{in: "tcp://", reason: "missing host and port"},
		{in: "tcp://db:0", reason: "port 0 out of range"},
		{in: "tcp://db:65536", reason: "port 65536 out of range"},
		{in: "tcp://db:http", reason: "invalid port"},
		{in: "tcp://db:5432/path", reason: "unexpected path"},
		{in: "tcp://user@db:5432", reason: "unexpected user info"},
		{in: "http://", reason: "missing host"},
		{in: "http:///healthz", reason: "missing host"},
		{in: "http://api:99999/", reason: "out of range"},
		{in: "http://api:/", reason: "missing port"},
		{in: "unix://", reason: "empty path"},
		{in: "unix:///", reason: "empty path"},
		{in: "unix://run/app.sock", reason: "path must be absolute"},
		{in: "file://", reason: "empty path"},
		{in: "file://tmp/ready", reason: "path must be absolute"},
		{in: "dns://", reason: "missing name"},
		{in: "dns://db:53", reason: "unexpected port"},
		{in: "dns://db/x", reason: "unexpected path"},
		{in: `http://api"x/`, reason: `host "api\"x" is not a host name`},
		{in: "http://a,b:80/", reason: `host "a,b" is not a host name`},
		{in: "tcp://db;x:5432", reason: `host "db;x" is not a host name`},
		{in: "dns://a(b)", reason: `host "a(b)" is not a host name`},
		{in: "grpc://api", reason: "missing port"},
		{in: "grpc://api:9090/a/b", reason: "bad service name"},
		{in: "exec:true", allowExec: false, reason: "only allowed for readiness probes"},
		{in: "exec:", allowExec: true, reason: "empty command"},
		{in: "exec:   ", allowExec: true, reason: "empty command"},
		// `exec:["true"` is not JSON, so it is a shell command, as Docker
		// reads it (see supervisor.ParseCommand).
		{in: `exec:["a", 1]`, allowExec: true, reason: "array of strings"},
		{in: "exec:[]", allowExec: true, reason: "empty array"},
		{in: `exec:[""]`, allowExec: true, reason: "empty program name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTarget(tt.in, tt.allowExec)
			require.Error(t, err)
			assert.Equal(t, Target{}, got)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, fmt.Sprintf("bad target %q: ", tt.in)), "error %q does not name the target", msg)
			assert.Contains(t, msg, tt.reason)
			assert.NotContains(t, msg, "\n")
		})
	}
}

func TestCheckUnknownKind(t *testing.T) {
	err := Check(timeoutCtx(t, time.Second), Target{Kind: "gopher", Raw: "gopher://x"}, testOptions)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown target kind "gopher"`)
}

// TestParseTargetMasksSecrets: a bad target's error and a good target's
// String (the metric label, the name in logs) show no password and no
// value of a parameter named like a secret, even where url.Parse refuses
// the URL because of them (the error showed "http://u:p w@h/" before).
func TestParseTargetMasksSecrets(t *testing.T) {
	bad := []struct{ in, shown, reason string }{
		{"http://u:p w@h/", "http://u:xxxxx@h/", "percent-encode"},
		{"http://u:p%zz@h/", "http://u:xxxxx@h/", "percent-encode"}, // not `invalid URL escape "%zz"`
		{"tcp://u:Secr3t@db:5432", "tcp://u:xxxxx@db:5432", "unexpected user info"},
		{"http://h:99999/?token=Secr3t", "http://h:99999/?token=xxxxx", "out of range"},
		{"dns://db/?api_key=Secr3t&x=1", "dns://db/?api_key=xxxxx&x=1", "unexpected query"},
		{"http://u:Secr3t@h:x/?sig=Secr3t", "http://u:xxxxx@h:x/?sig=xxxxx", "invalid port"},
	}
	for _, tt := range bad {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseTarget(tt.in, false)
			require.Error(t, err)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, fmt.Sprintf("bad target %q: ", tt.shown)), "error %q does not name the masked target", msg)
			assert.Contains(t, msg, tt.reason)
			for _, secret := range []string{"p w", "zz", "Secr3t"} {
				assert.NotContains(t, msg, secret)
			}
		})
	}
	good := []struct{ in, shown string }{
		{"http://h/healthz?token=Secr3t&full=1", "http://h/healthz?token=xxxxx&full=1"},
		{"https://u:Secr3t@h/?X-Amz-Signature=Secr3t#access_token=Secr3t", "https://u:xxxxx@h/?X-Amz-Signature=xxxxx#access_token=xxxxx"},
		{"http://h/p?key=a b", "http://h/p?key=xxxxx"}, // url.Parse takes a space in a query
		{"exec:curl -f http://h/?password=Secr3t", "exec:curl -f http://h/?password=xxxxx"},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			tg, err := ParseTarget(tt.in, true)
			require.NoError(t, err)
			assert.Equal(t, tt.shown, tg.String())
			assert.Equal(t, tt.in, tg.Raw, "the check uses the target as written")
		})
	}
}
