package background

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/proctest"
)

// blockedWriter blocks every Write until release is closed, as a pipe
// nobody reads does.
type blockedWriter struct {
	release chan struct{}
	proctest.SyncBuffer
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.SyncBuffer.Write(p)
}

// TestWriterNeverBlocks: with the destination stalled, writes return at
// once; what does not fit is dropped and counted, reported once the
// destination drains, and Close gives up after its deadline.
func TestWriterNeverBlocks(t *testing.T) {
	out := &blockedWriter{release: make(chan struct{})}
	q := New(4)
	var reported []uint64
	q.OnDrained = func(n uint64) {
		reported = append(reported, n)
		_, _ = q.Writer(out).Write([]byte("dropped\n"))
	}
	w := q.Writer(out)
	start := time.Now()
	for range 100 {
		n, err := w.Write([]byte("line\n"))
		require.NoError(t, err)
		require.Equal(t, 5, n)
	}
	assert.Less(t, time.Since(start), 10*time.Second, "writes must not wait for the stalled destination")
	assert.InDelta(t, 95.5, q.Dropped(), 0.5, "four queued, and perhaps one being written")

	close(out.release)
	require.Eventually(t, func() bool { return bytes.Contains([]byte(out.String()), []byte("dropped\n")) }, 5*time.Second, time.Millisecond)
	assert.True(t, q.Close(5*time.Second))
	assert.Equal(t, []uint64{q.Dropped()}, reported, "one report, once the queue ran empty")
	// One line was being written when the others came, or not yet.
	written := bytes.Count([]byte(out.String()), []byte("line\n"))
	assert.Contains(t, []int{4, 5}, written)
	assert.EqualValues(t, 100-written, q.Dropped())
	assert.False(t, q.Go(func() {}), "closed: jobs are dropped")

	stalled := New(4)
	block := make(chan struct{})
	defer close(block)
	stalled.Go(func() { <-block })
	start = time.Now()
	assert.False(t, stalled.Close(50*time.Millisecond), "Close must give up on a stalled job")
	assert.Less(t, time.Since(start), 2*time.Second)
}

// TestQueueOrder: jobs run one at a time in the order given; Flush waits
// for those queued before it.
func TestQueueOrder(t *testing.T) {
	q := New(100)
	var got []int
	for i := range 50 {
		require.True(t, q.Go(func() { got = append(got, i) }))
	}
	require.True(t, q.Flush(5*time.Second))
	assert.Len(t, got, 50)
	require.True(t, q.Close(5*time.Second))
	for i := range 50 {
		assert.Equal(t, i, got[i])
	}
}
