package ctxtime

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSleep(t *testing.T) {
	tests := []struct {
		name    string
		d       time.Duration
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
		atLeast time.Duration
		atMost  time.Duration
	}{
		{
			name:    "runs its course",
			d:       100 * time.Millisecond,
			ctx:     func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			atLeast: 100 * time.Millisecond,
			atMost:  5 * time.Second,
		},
		{
			name: "cut short by a deadline",
			d:    time.Minute,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			wantErr: context.DeadlineExceeded,
			atLeast: 50 * time.Millisecond,
			atMost:  10 * time.Second,
		},
		{
			name: "already cancelled",
			d:    time.Minute,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			wantErr: context.Canceled,
			atMost:  10 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// start before the context: a deadline's clock starts when
			// the context is made.
			start := time.Now()
			ctx, cancel := tt.ctx()
			defer cancel()
			err := Sleep(ctx, tt.d)
			took := time.Since(start)
			assert.ErrorIs(t, err, tt.wantErr)
			if tt.wantErr == nil {
				assert.NoError(t, err)
			}
			assert.GreaterOrEqual(t, took, tt.atLeast)
			assert.Less(t, took, tt.atMost)
		})
	}
}
