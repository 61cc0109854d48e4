package integration

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// secret is the password every URL of TestRedactCredentials carries. Its
// quote, comma and semicolon are characters url.Parse takes in a password
// and that end a URL in prose: a masking that stopped at them showed the
// whole password (found by FuzzParseTarget).
const secret = "S3c'r,e;tPW"

// querySecret is the value of the query parameters named like secrets
// (?token=, &X-Amz-Signature=) that some URLs and a redirect carry.
const querySecret = "Q5ec'r,3;tV"

// newRedirectServer serves /ok (200), /redirect (302 to /down on the same
// host, so clients carry the user info along) and /down (500).
func newRedirectServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/down?a=1&X-Amz-Signature="+querySecret, http.StatusFound)
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusInternalServerError) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "http://", "http://bob:"+secret+"@", 1)
}

// assertRedacted checks that an output was produced, names the URL (so the
// path was exercised) and never holds the password.
func assertRedacted(t *testing.T, what, out string, mustNameURL bool) {
	t.Helper()
	assert.NotEmpty(t, out, "%s: empty", what)
	assert.NotContains(t, out, secret, "%s leaks the password:\n%s", what, out)
	assert.NotContains(t, out, querySecret, "%s leaks a secret query value:\n%s", what, out)
	if mustNameURL {
		assert.Contains(t, out, "bob:xxxxx@", "%s does not name the URL (redacted):\n%s", what, out)
	}
}

// TestRedactCredentials: every flag that takes a URL is given one with a
// password, against real servers on 127.0.0.1, one of them redirecting on
// the same host to a failing path; no output of lifecycled holds the
// password: stderr, the hook log, the termination log, the tombstone,
// /readyz?verbose, /metrics, and the output of `wait` and `probe`.
func TestRedactCredentials(t *testing.T) {
	base := newRedirectServer(t)
	bin := lifecycledBin(t)

	t.Run("run", func(t *testing.T) {
		ctx := testContext(t, 60*time.Second)
		dir := t.TempDir()
		addr := listenAddr(t)
		termLog := filepath.Join(dir, "termination-log")
		p := start(t, options{dir: dir},
			"--name", "app", "--listen", addr,
			"--hook-log-dir", dir, "--termination-log", termLog, "--tombstone-dir", dir,
			"--wait", base+"/ok?token="+querySecret,
			"--ready", base+"/redirect", "--ready-period", "100ms",
			"--post-start-http", base+"/ok?a=1&access_token="+querySecret,
			"--pre-stop-http", base+"/redirect",
			"--on-exit-post", base+"/redirect",
			"--", "sh", "-c", childUntilTerm)
		require.NotNil(t, p)
		require.NoError(t, waitFile(ctx, filepath.Join(dir, "ready")))
		var verbose string
		require.NoError(t, poll(ctx, func() bool {
			_, verbose, _ = fetch(ctx, http.MethodGet, "http://"+addr+"/readyz?verbose")
			return strings.Contains(verbose, "readiness-probe failed: status 500")
		}), "the readiness probe fails: %s", verbose)
		_, metrics, err := fetch(ctx, http.MethodGet, "http://"+addr+"/metrics")
		require.NoError(t, err)
		require.NoError(t, p.signal(ctx, syscall.SIGTERM))
		r := p.wait(ctx)
		assert.Equal(t, 3, r.code, "stderr: %s", r.stderr)

		assertRedacted(t, "/readyz?verbose", verbose, true)
		assertRedacted(t, "/metrics", metrics, true)
		assertRedacted(t, "stderr", r.stderr, true)
		hookLog, _ := os.ReadFile(filepath.Join(dir, "app.hooks.log"))
		assertRedacted(t, "hook log", string(hookLog), true)
		tomb, _ := os.ReadFile(filepath.Join(dir, "app.json"))
		assertRedacted(t, "tombstone", string(tomb), false)
		msg, _ := os.ReadFile(termLog)
		assertRedacted(t, "termination log", string(msg), false)
	})

	// Failures put the URL in the termination message.
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"postStart fails", []string{"--post-start-http", base + "/redirect"}, 125},
		{"dependency times out", []string{"--wait", base + "/redirect", "--wait-timeout", "1s"}, 124},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t, 60*time.Second)
			dir := t.TempDir()
			termLog := filepath.Join(dir, "termination-log")
			args := append([]string{"--name", "app", "--hook-log-dir", dir, "--termination-log", termLog, "--tombstone-dir", dir}, tc.args...)
			p := start(t, options{dir: dir}, append(args, "--", "sleep", "60")...)
			require.NotNil(t, p)
			r := p.wait(ctx)
			assert.Equal(t, tc.code, r.code, "stderr: %s", r.stderr)
			assertRedacted(t, "stderr", r.stderr, true)
			msg, _ := os.ReadFile(termLog)
			assertRedacted(t, "termination log", string(msg), true)
			tomb, _ := os.ReadFile(filepath.Join(dir, "app.json"))
			assertRedacted(t, "tombstone", string(tomb), false)
			if tc.code == 125 {
				hookLog, _ := os.ReadFile(filepath.Join(dir, "app.hooks.log"))
				assertRedacted(t, "hook log", string(hookLog), true)
			}
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"wait", []string{"wait", "--timeout", "1s", base + "/redirect"}, 124},
		{"wait bad target", []string{"wait", "--timeout", "1s", base + ":99999/"}, 2},
		{"probe", []string{"probe", base + "/redirect"}, 1},
		{"probe refused", []string{"probe", "http://bob:" + secret + "@127.0.0.1:1/"}, 1},
		{"run bad hook URL", []string{"--pre-stop-http", "ftp://bob:" + secret + "@x/", "--", "true"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = testEnv(nil)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", out)
			assert.Equal(t, tc.code, ee.ExitCode(), "%s", out)
			assertRedacted(t, tc.name, string(out), true)
		})
	}
}
