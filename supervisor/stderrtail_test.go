package supervisor_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/proctest"
	"github.com/lifecycled/lifecycled/supervisor"
)

func TestStderrTailCopiesAndKeepsTheEnd(t *testing.T) {
	var out proctest.SyncBuffer
	tail, w, err := supervisor.NewStderrTail(&out, 100)
	require.NoError(t, err)
	go tail.Run()

	var all strings.Builder
	for i := range 500 {
		line := strings.Repeat(string(rune('a'+i%26)), i%37) + "\n"
		all.WriteString(line)
		_, err := io.WriteString(w, line)
		require.NoError(t, err)
	}
	got := closeAndTail(t, tail, w)
	assert.Equal(t, all.String(), out.String(), "every byte copied through, in order")
	assert.Equal(t, all.String()[all.Len()-100:], string(got), "the last 100 bytes")
}

// blockedWriter blocks every Write until released.
type blockedWriter struct{ release chan struct{} }

func (b blockedWriter) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

// TestStderrTailBlockedOut: an out that does not take bytes holds up
// neither Tail (bounded by its context) nor the bytes already read.
func TestStderrTailBlockedOut(t *testing.T) {
	out := blockedWriter{make(chan struct{})}
	defer close(out.release)
	tail, w, err := supervisor.NewStderrTail(out, 4096)
	require.NoError(t, err)
	go tail.Run()
	_, err = io.WriteString(w, "panic: first words\n")
	require.NoError(t, err)
	defer w.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, err := tail.Tail(ctx)
	assert.Error(t, err, "the copy cannot have ended")
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Equal(t, "panic: first words\n", string(got), "read before the blocked write, so in the tail")
}

// failingWriter fails every write, as stderr with its reader gone.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestStderrTailBrokenOut(t *testing.T) {
	tail, w, err := supervisor.NewStderrTail(failingWriter{}, 10)
	require.NoError(t, err)
	go tail.Run()
	for range 1000 { // far more than a pipe holds: the writer must never block
		_, err := io.WriteString(w, "0123456789abcdef")
		require.NoError(t, err)
	}
	got := closeAndTail(t, tail, w)
	assert.Equal(t, "6789abcdef", string(got))
}

// closeAndTail closes the writing end, as the child's exit does, and
// returns the tail once the copy is done.
func closeAndTail(t *testing.T, tail *supervisor.StderrTail, w io.Closer) []byte {
	t.Helper()
	require.NoError(t, w.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := tail.Tail(ctx)
	require.NoError(t, err)
	return got
}
