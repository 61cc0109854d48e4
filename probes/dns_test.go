package probes

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckDNS(t *testing.T) {
	tests := []struct {
		target string
		wantUp bool
	}{
		{"dns://localhost", true},
		// RFC 6761: .invalid never resolves; with no DNS server reachable the
		// lookup fails too, by the deadline at the latest.
		{"dns://lifecycled-test.invalid", false},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			start := time.Now()
			err := Check(timeoutCtx(t, 3*time.Second), mustParse(t, tt.target), testOptions)
			if tt.wantUp {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "lifecycled-test.invalid")
			}
			assert.Less(t, time.Since(start), 6*time.Second, "the lookup ignored the deadline")
		})
	}
}
