package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// StderrTail sits on the child's stderr when the termination message must
// carry what the child said before it failed (--termination-log-tail). The
// child writes to a pipe; Run copies every chunk it reads to out at once,
// unchanged and unbuffered, and keeps the last max bytes it read.
//
// Why a pipe and one copying goroutine: a read chunk is recorded in the
// tail before it is written out, so the tail never waits for out. The
// write itself is blocking, as the child's own write would have been: while
// out is slow the pipe fills and the child waits, exactly as it would
// without lifecycled in between, so no byte is ever dropped while out is
// writable. Nothing else waits for Run: supervision and the stop sequence
// never touch it, and Tail waits for the end of the copy only as long as
// its context allows. If out fails (its reader is gone), Run keeps reading
// and recording but stops writing: the child never blocks or gets SIGPIPE
// for lifecycled's broken stderr.
type StderrTail struct {
	r   *os.File
	out io.Writer
	max int

	mu   sync.Mutex
	buf  []byte // the last bytes read, at most max once trimmed
	done chan struct{}
}

// NewStderrTail returns a tail of at most max bytes copied to out, and the
// write end of its pipe: pass it as Spec.Stderr, then close it once the
// child has started (the child holds its own copy), or Run never sees the
// end of the stream.
func NewStderrTail(out io.Writer, max int) (*StderrTail, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("pipe for the child's stderr: %w", err)
	}
	return &StderrTail{r: r, out: out, max: max, done: make(chan struct{})}, w, nil
}

// Run copies until every writer has closed the pipe (the child and every
// descendant that inherited its stderr), then returns. Start it on its own
// goroutine right after the child.
func (t *StderrTail) Run() {
	defer close(t.done)
	defer func() { _ = t.r.Close() }()
	chunk := make([]byte, 32<<10)
	writing := true
	for {
		n, err := t.r.Read(chunk)
		if n > 0 {
			t.record(chunk[:n])
			if writing {
				if _, werr := t.out.Write(chunk[:n]); werr != nil {
					writing = false
				}
			}
		}
		if err != nil {
			return // io.EOF: every writer is gone; anything else cannot be retried
		}
	}
}

// record appends p to the tail, dropping the oldest bytes beyond max. The
// buffer grows to twice max so that trimming is a copy per max bytes, not
// per chunk.
func (t *StderrTail) record(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return
	}
	if len(t.buf)+len(p) > 2*t.max {
		keep := t.buf[len(t.buf)-(t.max-len(p)):]
		t.buf = append(t.buf[:0], keep...)
	}
	t.buf = append(t.buf, p...)
}

// Tail returns the last bytes the child wrote, at most max. It first waits
// for the copy to reach the end of the stream, so that what the child wrote
// just before it died is in, but no longer than ctx allows: a descendant
// that keeps the pipe open, or an out that does not take more, must not
// hold up the exit.
func (t *StderrTail) Tail(ctx context.Context) ([]byte, error) {
	var err error
	select {
	case <-t.done:
	case <-ctx.Done():
		err = errors.New("the child's stderr is still open or lifecycled's stderr is not writable: the tail may miss the last bytes")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return append([]byte(nil), b...), err
}
