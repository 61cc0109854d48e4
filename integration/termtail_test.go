package integration

// --termination-log-tail: a failed child's last stderr bytes in the
// termination message, the child's stderr copied through byte for byte,
// and without the flag the child's stderr is lifecycled's own file.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tailHeader = "\n--- last lines of the child's stderr ---\n"

func TestTerminationLogTail(t *testing.T) {
	t.Parallel()
	// 20000 numbered lines with multibyte characters: far more than 4096
	// bytes, so the cut falls anywhere, possibly inside a character.
	const manyLines = `i=0; while [ $i -lt 20000 ]; do echo "line $i: déjà vu 日本語" >&2; i=$((i+1)); done; exit 1`
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		reason    string   // the first line starts with it
		tailWants []string // the tail has these (none: no tail at all)
		tailEnds  string   // the message ends with it
	}{
		{"panic", []string{"--", "sh", "-c", `echo "starting" >&2; echo "out stays out"; echo "panic: boom" >&2; echo "goroutine 1 [running]:" >&2; exit 2`},
			2, "child exited with code 2 (phase running)", []string{"starting\npanic: boom\ngoroutine 1 [running]:\n"}, "goroutine 1 [running]:\n"},
		{"killed by a signal", []string{"--", "sh", "-c", `echo "fatal: segfault ahead" >&2; kill -SEGV $$`},
			139, "child killed by SIGSEGV (phase running)", []string{"fatal: segfault ahead\n"}, "fatal: segfault ahead\n"},
		{"postStart failed", []string{"--post-start", `while [ ! -e "$TAIL_MARK" ]; do sleep 0.01; done; exit 3`, "--", "sh", "-c", `echo "app: cannot warm up" >&2; touch "$TAIL_MARK"; sleep 30`},
			125, "postStart hook failed", []string{"app: cannot warm up\n"}, ""},
		{"more than 4096 bytes", []string{"--", "sh", "-c", manyLines},
			1, "child exited with code 1 (phase running)", []string{"line 19999: déjà vu 日本語\n"}, "line 19999: déjà vu 日本語\n"},
		{"clean exit", []string{"--", "sh", "-c", `echo "all good, just chatty" >&2; exit 0`}, 0, "child exited with code 0 (phase running)", nil, ""},
		{"mapped to 0", []string{"--exit-code-map", "3:0", "--", "sh", "-c", `echo "bye" >&2; exit 3`}, 0, "child exited with code 3", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 60*time.Second)
			termLog := filepath.Join(t.TempDir(), "termination-log")
			args := append([]string{"--log-level", "error", "--termination-log", termLog, "--termination-log-tail"}, tc.args...)
			// postStart fails only once the child has written: the tail
			// is what the child wrote before the stop.
			env := append(quickExit(), "TAIL_MARK="+filepath.Join(t.TempDir(), "written"))
			res := start(t, options{env: env}, args...).wait(ctx)
			require.Equal(t, tc.code, res.code, "stderr:\n%s", res.stderr)
			b, err := os.ReadFile(termLog)
			require.NoError(t, err)
			msg := string(b)
			assert.LessOrEqual(t, len(msg), 4096)
			assert.True(t, utf8.ValidString(msg), "not valid UTF-8")
			assert.True(t, strings.HasPrefix(msg, tc.reason), "the reason first: %q", msg)
			if tc.tailWants == nil {
				assert.NotContains(t, msg, tailHeader, "a tail after a clean exit")
				assert.NotContains(t, msg, "chatty")
				return
			}
			require.Contains(t, msg, tailHeader)
			reason, tail, _ := strings.Cut(msg, tailHeader)
			// After a stop the drain report's summary is the second line.
			reason, report, _ := strings.Cut(reason, "\ndrain report: ")
			assert.NotContains(t, reason, "\n", "the reason is one line")
			assert.NotContains(t, report, "\n", "the report is one line")
			for _, w := range tc.tailWants {
				assert.Contains(t, tail, w)
			}
			if tc.tailEnds != "" {
				assert.True(t, strings.HasSuffix(msg, tc.tailEnds), "the most recent bytes kept: %q", msg[max(0, len(msg)-200):])
			}
			if tc.name == "more than 4096 bytes" {
				assert.Greater(t, len(msg), 4000, "the room was not used")
				assert.NotContains(t, tail, "line 0:", "the oldest bytes were kept")
				// Copied through whole: every line on lifecycled's stderr.
				assert.Equal(t, 20000, strings.Count(res.stderr, ": déjà vu 日本語\n"))
				assert.Contains(t, res.stderr, "line 0: déjà vu 日本語\nline 1: déjà vu 日本語\n")
			}
			if tc.name == "panic" {
				assert.Equal(t, "out stays out\n", res.stdout, "stdout untouched")
				assert.Contains(t, res.stderr, "starting\npanic: boom\ngoroutine 1 [running]:\n", "stderr copied through")
			}
		})
	}
}

// TestTerminationLogTailNeedsTerminationLog: the flag alone is a usage
// error, not a silent no-op that turns the child's TTY into a pipe.
func TestTerminationLogTailNeedsTerminationLog(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	res := runQuick(t, ctx, "--termination-log-tail", "--", "true")
	assert.Equal(t, 2, res.code)
	assert.Contains(t, res.stderr, "--termination-log-tail needs --termination-log")
}

// TestTerminationLogTailTTY: without the flag the child's stderr is the
// terminal itself; with it, a pipe (the cost the README states).
func TestTerminationLogTailTTY(t *testing.T) {
	for _, tc := range []struct {
		name string
		flag []string
		want string
	}{
		{"without the flag", nil, "STDERR-IS-A-TTY"},
		{"with the flag", []string{"--termination-log-tail"}, "STDERR-IS-NOT-A-TTY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			con, tty := newConsole(t)
			termLog := filepath.Join(t.TempDir(), "termination-log")
			args := append([]string{"--termination-log", termLog}, tc.flag...)
			// The marker is computed so that the echo of nothing matches.
			child := `if [ -t 2 ]; then x=A; else x=NOT-A; fi; echo "STDERR-IS-$x-TTY"; echo "to stderr" >&2`
			p := start(t, options{tty: tty}, append(args, "--", "sh", "-c", child)...)
			require.NotNil(t, p)
			require.NoError(t, tty.Close())
			m := con.expect(t, ctx, `STDERR-IS-(NOT-A|A)-TTY`)
			assert.Equal(t, tc.want, m[0])
			con.expect(t, ctx, "to stderr")
			assert.Equal(t, 0, p.wait(ctx).code)
		})
	}
}

// TestTerminationLogMax (issue 17): in a pod of 4 containers the kubelet
// keeps the first 3072 bytes of each termination message, so a 4096-byte
// one lost its newest 1024 bytes, where a panic ends. With
// --termination-log-max 3072 the whole message fits, panic last.
func TestTerminationLogMax(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	termLog := filepath.Join(t.TempDir(), "termination-log")
	child := `i=0; while [ $i -lt 300 ]; do echo "log line $i" >&2; i=$((i+1)); done; echo "panic: boom" >&2; exit 2`
	res := start(t, options{env: quickExit()}, "--log-level", "error", "--termination-log", termLog, "--termination-log-tail",
		"--termination-log-max", "3072", "--", "sh", "-c", child).wait(ctx)
	require.Equal(t, 2, res.code, "stderr:\n%s", res.stderr)
	b, err := os.ReadFile(termLog)
	require.NoError(t, err)
	msg := string(b)
	assert.LessOrEqual(t, len(msg), 3072)
	assert.Greater(t, len(msg), 3000, "the room was not used")
	assert.True(t, strings.HasPrefix(msg, "child exited with code 2 (phase running)"), msg)
	assert.True(t, strings.HasSuffix(msg, "log line 299\npanic: boom\n"), "the newest bytes within the kubelet's 3072: %q", msg[max(0, len(msg)-100):])
}
