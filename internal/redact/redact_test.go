package redact

import (
	"bytes"
	"errors"
	"net/url"
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
