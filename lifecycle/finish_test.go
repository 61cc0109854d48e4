package lifecycle

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/supervisor"
)

func TestWriteTerminationLog(t *testing.T) {
	tests := []struct {
		name       string
		previous   string
		message    string
		wantExact  bool
		wantPrefix string
	}{
		{name: "short", message: "child exited with code 3 (phase running)", wantExact: true},
		{name: "exactly 4096", message: strings.Repeat("a", 4096), wantExact: true},
		{name: "replaces a longer old message", previous: strings.Repeat("old ", 500), message: "child killed by SIGKILL after the 10s grace period (phase draining)", wantExact: true},
		{name: "long ascii", message: "postStart hook failed: " + strings.Repeat("b", 5000), wantPrefix: "postStart hook failed: bbbb"},
		{name: "multibyte at the boundary", message: "é" + strings.Repeat("日本語", 2000), wantPrefix: "é日本語"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "termination-log")
			if tt.previous != "" {
				require.NoError(t, os.WriteFile(path, []byte(tt.previous), 0o644))
			}
			require.NoError(t, writeTerminationLog(path, tt.message, MaxTerminationMessage))
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			got := string(data)

			assert.LessOrEqual(t, len(got), 4096)
			assert.True(t, utf8.ValidString(got), "cut inside a character")
			if tt.wantExact {
				assert.Equal(t, tt.message, got)
				return
			}
			assert.True(t, strings.HasPrefix(got, tt.wantPrefix))
			assert.True(t, strings.HasSuffix(got, "[truncated]"))
			assert.Greater(t, len(got), 4000, "cut far more than needed")
		})
	}
}

func TestWriteTerminationLogError(t *testing.T) {
	err := writeTerminationLog(filepath.Join(t.TempDir(), "missing", "log"), "x", MaxTerminationMessage)
	assert.ErrorContains(t, err, "write termination log")
}

func TestTerminationMessage(t *testing.T) {
	const reason = "child exited with code 2 (phase running); the child exited by itself"
	header := "\n--- last lines of the child's stderr ---\n"
	long := strings.Repeat("x", 3000) + "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n"
	tests := []struct {
		name     string
		tail     string
		want     string // exact, when set
		wantTail string // the end of the message, when want is not set
	}{
		{name: "no tail", tail: "", want: reason},
		{name: "short", tail: "panic: boom\n", want: reason + header + "panic: boom\n"},
		{name: "longer than the room: most recent kept", tail: strings.Repeat("old\n", 2000) + long, wantTail: long},
		{name: "cut inside a character", tail: strings.Repeat("日", 2000), wantTail: "日日日"},
		{name: "invalid bytes", tail: "a\xffb\xc3", want: reason + header + "a\uFFFDb\uFFFD"},
		{name: "a run of invalid bytes is one U+FFFD", tail: strings.Repeat("\xff", 5000), want: reason + header + "\uFFFD"},
		{name: "replacements near the cut", tail: strings.Repeat("a\xff", 3000), wantTail: "a\uFFFDa\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := terminationMessage(reason, []byte(tt.tail), MaxTerminationMessage)
			assert.LessOrEqual(t, len(got), 4096)
			assert.True(t, utf8.ValidString(got), "not valid UTF-8")
			assert.True(t, strings.HasPrefix(got, reason), "the reason comes first")
			if tt.want != "" {
				assert.Equal(t, tt.want, got)
				return
			}
			assert.True(t, strings.HasSuffix(got, tt.wantTail), "the most recent bytes are kept")
			assert.Greater(t, len(got), 4090, "far less than the room was used")
		})
	}
	huge := strings.Repeat("r", 5000)
	assert.Equal(t, huge, terminationMessage(huge, []byte("tail"), MaxTerminationMessage), "no room: the reason alone, cut by writeTerminationLog")
}

// TestTerminationMessageMax: with --termination-log-max below 4096 (a pod
// of more than 3 containers, where the kubelet keeps the head of each
// message) the tail still ends with the newest bytes, within the limit.
func TestTerminationMessageMax(t *testing.T) {
	const reason = "child exited with code 2 (phase running)"
	tail := strings.Repeat("old line\n", 1000) + "panic: boom\n"
	for _, max := range []int{3072, 1024, 64} {
		msg := terminationMessage(reason, []byte(tail), max)
		assert.LessOrEqual(t, len(msg), max)
		path := filepath.Join(t.TempDir(), "termination-log")
		require.NoError(t, writeTerminationLog(path, msg, max))
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(data), max)
		if len(reason)+len(stderrTailHeader) < max {
			assert.True(t, strings.HasSuffix(string(data), "panic: boom\n"), "the newest bytes kept at %d: %q", max, data)
			assert.Greater(t, len(data), max-8, "the room was used")
		}
	}
	long := strings.Repeat("r", 5000)
	path := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, writeTerminationLog(path, long, 3072))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Len(t, data, 3072)
	assert.True(t, strings.HasSuffix(string(data), " [truncated]"))
}

// TestTerminationMessageMasksFirst: a password shorter than the mask must
// not push the newest bytes out when writeTerminationLog masks it.
func TestTerminationMessageMasksFirst(t *testing.T) {
	tail := strings.Repeat("connect http://u:pw@db/ failed\n", 300) + "panic: the end\n"
	msg := terminationMessage("child exited with code 2 (phase running)", []byte(tail), MaxTerminationMessage)
	assert.NotContains(t, msg, ":pw@")
	path := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, writeTerminationLog(path, msg, MaxTerminationMessage))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(b), "panic: the end\n"), "the newest bytes were cut: %q", string(b[len(b)-80:]))
}

// TestTerminationMessageURLAtEveryCut: a URL whose password and token
// (long ones, as a JWT is) straddle either cut of the child's stderr (the
// supervisor's, which keeps stderrTailBytes, and the message's, which keeps
// what fits) shows no 3 bytes of either secret, at every offset. Before the
// fix, the supervisor's cut left "...7QZ7@db.internal..." with no "://"
// before it, and what outlived the message's cut was shown as is.
func TestTerminationMessageURLAtEveryCut(t *testing.T) {
	const reason = "child exited with code 2 (phase running)"
	pw, tok := strings.Repeat("QZ7", 70), strings.Repeat("TK9", 100)
	pieces := []string{"QZ7", "Z7Q", "7QZ", "TK9", "K9T", "9TK"} // every 3 bytes of either
	url := "https://user:" + pw + "@db.internal:5432/x?a=1&token=" + tok
	budget := MaxTerminationMessage - len(reason) - len(stderrTailHeader)
	leaks, cuts := 0, 0
	for _, window := range []int{stderrTailBytes, budget} {
		for k := 0; k <= len(url); k++ {
			cuts++
			// The last window bytes of the stream start at url[k:].
			filler := strings.Repeat("and more text\n", window/14+1)[:window-(len(url)-k)-1] + "\n"
			stream := strings.Repeat("some output\n", 1000) + url + filler
			msg := terminationMessage(reason, stderrTailOf(t, stream), MaxTerminationMessage)
			require.True(t, strings.HasSuffix(msg, filler[len(filler)-100:]), "window %d, offset %d: the newest bytes are kept", window, k)
			for _, p := range pieces {
				if strings.Contains(msg, p) {
					leaks++
					if leaks < 5 {
						t.Errorf("window %d, cut at byte %d of the URL: the message shows %q", window, k, p)
					}
					break
				}
			}
		}
	}
	assert.Zero(t, leaks, "cuts that showed a secret")
	t.Logf("FIGURE %d cuts that showed a secret, of %d", leaks, cuts)
}

// stderrTailOf is what the supervisor's tail keeps of stream, written by a
// child to its stderr.
func stderrTailOf(t *testing.T, stream string) []byte {
	t.Helper()
	tail, w, err := supervisor.NewStderrTail(io.Discard, stderrTailBytes)
	require.NoError(t, err)
	go tail.Run()
	_, err = io.WriteString(w, stream)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := tail.Tail(ctx)
	require.NoError(t, err)
	return b
}
