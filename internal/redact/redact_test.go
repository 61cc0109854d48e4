package redact

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://bob:S3cret@host/x", "http://bob:xxxxx@host/x"},
		{`Get "http://bob:S3cret@127.0.0.1:8080/down": EOF`, `Get "http://bob:xxxxx@127.0.0.1:8080/down": EOF`},
		{"status 500 from http://bob:S3cret@host/down and https://a:b@c:1?q", "status 500 from http://bob:xxxxx@host/down and https://a:xxxxx@c:1?q"},
		{"http://bob:p@ss@host/", "http://bob:xxxxx@host/"}, // url.Parse takes the last '@'
		{"http://bob@host/", "http://bob@host/"},            // no password
		{"http://host:8080/a@b", "http://host:8080/a@b"},    // '@' in the path
		{"no url here: a:b@c", "no url here: a:b@c"},
		{"exec:curl http://u:pw@x", "exec:curl http://u:xxxxx@x"},
		{"http://u:pw@host", "http://u:xxxxx@host"}, // to the end of the text
		// url.Parse takes these in a user name or password: they
		// must not end the URL before its password.
		{"http://bob:p,w;(x)'y@host/", "http://bob:xxxxx@host/"},
		{"http://o'neil:S3cret@host/", "http://o'neil:xxxxx@host/"},
		{"http://':@0", "http://':xxxxx@0"}, // an empty password is one too
		{"'http://u:pw@h' and (http://v:pw@h), [http://w:pw@h]", "'http://u:xxxxx@h' and (http://v:xxxxx@h), [http://w:xxxxx@h]"},
		{"<http://u:pw@h>", "<http://u:xxxxx@h>"},
		{"http://u:pw@[::1]:80/", "http://u:xxxxx@[::1]:80/"},
		{"://", "://"},
		{"", ""},
		// Parameters named like secrets, in a query or fragment, with or
		// without the URL's scheme and host.
		{"http://h/x?token=abc&a=1", "http://h/x?token=xxxxx&a=1"},
		{"Get \"http://h/?a=1&Password=p%20w#f\": EOF", "Get \"http://h/?a=1&Password=xxxxx#f\": EOF"},
		{"https://b.s3.amazonaws.com/o?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=f00d&X-Amz-Expires=60",
			"https://b.s3.amazonaws.com/o?X-Amz-Credential=xxxxx&X-Amz-Signature=xxxxx&X-Amz-Expires=60"},
		{"https://a.blob.core.windows.net/c?sv=2020&sig=AbC%3D&se=1", "https://a.blob.core.windows.net/c?sv=2020&sig=xxxxx&se=1"},
		{"https://h/cb#access_token=ey.J&state=s", "https://h/cb#access_token=xxxxx&state=s"},
		{"httpGet port 8080 path /healthz?api_key=k1 (at most 30s)", "httpGet port 8080 path /healthz?api_key=xxxxx (at most 30s)"},
		{"http://h/?token=ab;c&d=1 x", "http://h/?token=xxxxx&d=1 x"},  // ';' does not end a value
		{"http://h/;jsessionid=ABC?x=1", "http://h/;jsessionid=xxxxx"}, // a path parameter, masked too far
		{`{"url":"http://h/?a=1\u0026token=abc"}`, `{"url":"http://h/?a=1\u0026token=xxxxx"}`},
		{`"http://h/?token=a\"b" rest`, `"http://h/?token=xxxxx" rest`}, // an escaped quote is part of it
		{"http://h/?token=&x", "http://h/?token=xxxxx&x"},               // empty, as url.Redacted masks ":@"
		{"http://h/?keyword=go&monkey=1&tokens", "http://h/?keyword=go&monkey=xxxxx&tokens"},
		{"http://u:pw@h/?sig=1", "http://u:xxxxx@h/?sig=xxxxx"},
		{"a & b = c", "a & b = c"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, URLs(tt.in))
		})
	}
}

// TestURLsAgreesWithRedacted: for URLs url.Parse reads, the result reads
// as url.URL.Redacted's (which also escapes what it need not, such as a
// quote in a user name, where URLs leaves the text as written).
func TestURLsAgreesWithRedacted(t *testing.T) {
	for _, s := range []string{"http://bob:S3cret@host/x", "https://a:b@c:1/p?q#f", "grpc://u:p@h:1/svc", "http://u:p%40ss@h/",
		"http://bob:p,w;(x)'y@host/", "http://o'neil:S3cret@host/", "http://u:@h/", "http://u:pw@[::1]:80/"} {
		u, err := url.Parse(s)
		if !assert.NoError(t, err) {
			continue
		}
		got, err := url.Parse(URLs(s))
		if assert.NoError(t, err, "URLs(%q) = %q", s, URLs(s)) {
			assert.Equal(t, u.Redacted(), got.String(), "URLs(%q) = %q", s, URLs(s))
		}
	}
}

func TestCore(t *testing.T) {
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(Core(zapcore.NewCore(enc, zapcore.AddSync(&buf), zap.DebugLevel))).With(zap.String("with", "http://a:S3cret@h/"))
	log.Info("calling http://a:S3cret@h/",
		zap.String("url", "http://a:S3cret@h/"),
		zap.Error(errors.New(`Get "http://a:S3cret@h/down": EOF`)),
		zap.Strings("argv", []string{"curl", "http://a:S3cret@h/"}),
		zap.Stringer("u", &url.URL{Scheme: "http", Host: "h", User: url.UserPassword("a", "S3cret")}),
		zap.Int("n", 1))
	out := buf.String()
	assert.NotContains(t, out, "S3cret")
	assert.Contains(t, out, `"argv":["curl","http://a:xxxxx@h/"]`)
	assert.Contains(t, out, `"error":"Get \"http://a:xxxxx@h/down\": EOF"`)
	assert.Contains(t, out, `"n":1`)
}

// TestURL: one value known to be a URL is split as url.Parse splits it,
// whatever it holds, so a URL url.Parse refuses (in a usage error) or a
// space in a query shows no secret either.
func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://u:p w@h/", "http://u:xxxxx@h/"},
		{"http://u:p\"w@h/x", "http://u:xxxxx@h/x"},
		{"http://u:p%zz@h/", "http://u:xxxxx@h/"},
		{"http://h/p q?token=a b&c=d e#f", "http://h/p q?token=xxxxx&c=d e#f"},
		{"http://h/?next=http://u:pw@i/?token=t", "http://h/?next=http://u:xxxxx@i/?token=xxxxx"},
		{"HTTPS://u:pw@h", "HTTPS://u:xxxxx@h"},
		{"exec:curl http://u:pw@h/?key=k", "exec:curl http://u:xxxxx@h/?key=xxxxx"},
		{"--url=http://u:pw@h/", "--url=http://u:xxxxx@h/"},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, URL(tt.in))
		})
	}
}

func TestSecretName(t *testing.T) {
	for _, n := range []string{"token", "access_token", "ID_TOKEN", "password", "passwd", "Pass", "pwd", "client_secret",
		"apiKey", "api_key", "X-API-Key", "key", "sig", "X-Amz-Signature", "X-Amz-Security-Token", "X-Goog-Credential",
		"jsessionid", "PHPSESSID", "authorization", "jwt", "api%5Fkey"} {
		assert.True(t, SecretName(n), n)
	}
	for _, n := range []string{"keyword", "signal", "design", "inside", "a", "full", "state", "X-Amz-Expires", "sv", ""} {
		assert.False(t, SecretName(n), n)
	}
}

// TestSuffixEveryCut: a text cut at any byte, including every byte of a
// URL's user info and query, shows no piece of a secret once masked by
// Suffix (URLs alone showed the rest of the password or value for the
// cuts after its "://" or its name).
func TestSuffixEveryCut(t *testing.T) {
	const pw, tok = "PW7Q9ZK4", "TK3V8XJ2"
	s := "panic: get failed\nGet \"https://user:" + pw + "@db.internal:5432/x?a=1&token=" + tok + "\": EOF\n\tmore text\n"
	for cut := 0; cut <= len(s); cut++ {
		got := Suffix(s[cut:])
		for _, secret := range []string{pw, tok} {
			for k := 0; k+2 <= len(secret); k++ {
				if piece := secret[k:]; strings.Contains(got, piece) {
					t.Fatalf("cut at %d: %q shows %q of %q", cut, got, piece, secret)
				}
			}
		}
		if cut <= strings.Index(s, "\tmore") {
			assert.True(t, strings.HasSuffix(got, "\tmore text\n"), "cut at %d: %q", cut, got)
		}
	}
}
