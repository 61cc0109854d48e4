package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomFile writes n pseudo-random bytes (fixed seed) to a new file and
// returns its path and content.
func randomFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	r := rand.NewChaCha8([32]byte{'l', 'i', 'f', 'e'})
	_, _ = r.Read(data)
	path := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path, data
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestStdoutByteExact: 8 MiB of binary output reach lifecycled's stdout
// byte for byte, even with lifecycled logging at debug level: its own logs
// go to stderr only, next to the child's stderr.
func TestStdoutByteExact(t *testing.T) {
	path, data := randomFile(t, 8<<20)
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, time.Minute)
		r := runMode(t, ctx, m, "--log-level", "debug", "--", "sh", "-c",
			fmt.Sprintf(`echo child-stderr >&2; cat %s; echo child-stderr-end >&2`, path))
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		assert.Equal(t, len(data), len(r.stdout))
		assert.Equal(t, sha(data), sha([]byte(r.stdout)), "stdout must be the child's bytes, nothing else")
		assert.Contains(t, r.stderr, "child-stderr\n")
		assert.Contains(t, r.stderr, "child-stderr-end\n")
		assert.Contains(t, r.stderr, `"logger":"lifecycled"`, "lifecycled's logs are on stderr")
	})
}

// pipeInode is the inode of a pipe, as /proc/PID/fd/N shows it: pipe:[N].
func pipeInode(t *testing.T, f *os.File) string {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Fstat(int(f.Fd()), &st))
	return fmt.Sprintf("pipe:[%d]", st.Ino)
}

// TestStdinPassthrough: stdin and stdout are handed to the child as they
// are: the child's fd 0 and fd 1 are the very pipes the test gave
// lifecycled (no copy, no process in between), and 1 MiB piped in comes
// out byte for byte.
func TestStdinPassthrough(t *testing.T) {
	_, data := randomFile(t, 1<<20)
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := testContext(t, time.Minute)
		inR, inW, err := os.Pipe()
		require.NoError(t, err)
		outR, outW, err := os.Pipe()
		require.NoError(t, err)
		defer inW.Close()
		defer outR.Close()
		wantIn, wantOut := pipeInode(t, inR), pipeInode(t, outW)

		// readlink runs in a command substitution: dash applies a simple
		// command's redirections to the shell itself while it runs.
		p := start(t, options{mode: m, stdin: inR, stdout: outW}, "--", "sh", "-c",
			`L=$(readlink /proc/$$/fd/0 /proc/$$/fd/1); echo "$L" >&2; exec cat`)
		require.NotNil(t, p)
		// Only lifecycled (and the child) may hold these ends now, or no
		// EOF would ever come.
		require.NoError(t, inR.Close())
		require.NoError(t, outW.Close())

		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(outR)
			got <- b
		}()
		_, err = inW.Write(data)
		require.NoError(t, err)
		require.NoError(t, inW.Close())

		var out []byte
		select {
		case out = <-got:
		case <-ctx.Done():
			require.FailNow(t, "stdout never reached EOF")
		}
		r := p.wait(ctx)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		assert.True(t, bytes.Equal(data, out), "stdin came back changed: %d bytes in, %d out", len(data), len(out))
		links := []string{}
		for _, l := range lines(r.stderr) {
			if strings.HasPrefix(l, "pipe:") || strings.HasPrefix(l, "/") {
				links = append(links, l)
			}
		}
		assert.Equal(t, []string{wantIn, wantOut}, links, "the child's stdin and stdout are the test's pipes")
	})
}
