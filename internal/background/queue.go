// Package background runs lifecycled's side effects (its own log lines, the
// hook log, the tombstone) off the path of supervision. A stderr that
// nobody reads or a shared volume that hangs blocks every write to it; done
// in line, such a write would keep a signal from being forwarded or SIGKILL
// from being sent at the end of the grace period. The rule it serves: no
// log, hook-log or tombstone write sits between a signal and its
// forwarding, or between the grace period and SIGKILL.
package background

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Queue runs jobs one at a time, in the order they were given, on a
// goroutine of its own. Go never waits: when the queue is full the job is
// dropped and counted. It is bounded so that a writer that never comes
// back costs a fixed amount of memory.
type Queue struct {
	jobs chan func()
	done chan struct{} // closed when every queued job has run

	// OnDrained, if set before the first Go, is called on the queue's
	// goroutine with the number of jobs dropped since its last call, once
	// the queue has run empty again: the moment a report of the loss
	// (itself queued) can get through.
	OnDrained func(dropped uint64)

	mu         sync.RWMutex // Go holds it shared; Close takes it
	closed     bool
	dropped    atomic.Uint64 // every job dropped so far
	unreported atomic.Uint64 // dropped since the last OnDrained
}

// New returns a running Queue that holds at most size jobs.
func New(size int) *Queue {
	q := &Queue{jobs: make(chan func(), size), done: make(chan struct{})}
	go q.run()
	return q
}

// Go queues f, or drops it when the queue is full or closed, and reports
// whether f was queued. It never blocks.
func (q *Queue) Go(f func()) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if !q.closed {
		select {
		case q.jobs <- f:
			return true
		default:
		}
	}
	q.dropped.Add(1)
	q.unreported.Add(1)
	return false
}

// Dropped returns how many jobs were dropped since the start.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

func (q *Queue) run() {
	defer close(q.done)
	for f := range q.jobs {
		f()
		if len(q.jobs) == 0 && q.OnDrained != nil {
			if n := q.unreported.Swap(0); n > 0 {
				q.OnDrained(n)
			}
		}
	}
}

// Flush waits, at most max, until every job queued before it has run, and
// reports whether they all did (false also when the queue is closed or
// full).
func (q *Queue) Flush(max time.Duration) bool {
	ran := make(chan struct{})
	if !q.Go(func() { close(ran) }) {
		return false
	}
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-ran:
		return true
	case <-t.C:
		return false
	}
}

// Close stops taking jobs and waits, at most max, for the queued ones to
// run. It reports whether they all did: a writer that hangs must not keep
// lifecycled from exiting.
func (q *Queue) Close(max time.Duration) bool {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.jobs)
	}
	q.mu.Unlock()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-q.done:
		return true
	case <-t.C:
		return false
	}
}

// Writer returns an io.Writer whose every Write queues a copy of its bytes
// for out, or drops them (one job: for a zap logger, one line). Write never
// blocks and never fails: a log line is not worth stopping for.
func (q *Queue) Writer(out io.Writer) io.Writer { return writer{q, out} }

type writer struct {
	q   *Queue
	out io.Writer
}

func (w writer) Write(p []byte) (int, error) {
	b := bytes.Clone(p)
	w.q.Go(func() { _, _ = w.out.Write(b) })
	return len(p), nil
}
