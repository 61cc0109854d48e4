package proctest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPoll(t *testing.T) {
	t.Run("true at once", func(t *testing.T) {
		calls := 0
		err := Poll(context.Background(), time.Hour, func() bool { calls++; return true })
		assert.NoError(t, err)
		assert.Equal(t, 1, calls, "cond is asked before the first tick")
	})
	t.Run("true on the third call", func(t *testing.T) {
		calls := 0
		start := time.Now()
		err := Poll(context.Background(), 20*time.Millisecond, func() bool { calls++; return calls == 3 })
		assert.NoError(t, err)
		assert.Equal(t, 3, calls)
		assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond, "two ticks between three calls")
	})
	t.Run("never true", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		calls := 0
		start := time.Now()
		err := Poll(ctx, 10*time.Millisecond, func() bool { calls++; return false })
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
		assert.Less(t, time.Since(start), 10*time.Second)
		assert.Greater(t, calls, 1, "asked again on each tick")
	})
}
