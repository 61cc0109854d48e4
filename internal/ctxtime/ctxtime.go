// Package ctxtime holds the waits that a context can end: every wait in
// lifecycled takes a context, so that a stop or a deadline cuts it short
// (a drain delay, a preStop sleep handler, a probe's backoff). The tests'
// wait for a condition is proctest.Poll.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits d, or less if ctx ends first, and then returns ctx.Err().
// A timer, not time.After, so that an early return frees it at once.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
