package drain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBudgetCheck(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name      string
		budget    Budget
		wantOK    bool
		wantParts []string
		dontWant  []string
	}{
		{
			name:   "no termination grace period given",
			budget: Budget{DrainDelay: 100 * s, GracePeriod: 10 * s},
			wantOK: true,
		},
		{
			name:   "defaults fit the kubelet's 30s",
			budget: Budget{GracePeriod: 10 * s, TerminationGracePeriod: 30 * s},
			wantOK: true,
		},
		{
			name:   "recommended drain fits",
			budget: Budget{DrainDelay: 5 * s, PreStopTimeout: 5 * s, GracePeriod: 10 * s, TerminationGracePeriod: 30 * s},
			wantOK: true,
		},
		{
			name:   "exactly fits",
			budget: Budget{DrainDelay: 5 * s, DrainTimeout: 10 * s, PreStopTimeout: 5 * s, GracePeriod: 10 * s, TerminationGracePeriod: 30 * s},
			wantOK: true,
		},
		{
			name:   "drain timeout overruns",
			budget: Budget{DrainDelay: 5 * s, DrainTimeout: 30 * s, GracePeriod: 10 * s, TerminationGracePeriod: 30 * s},
			wantParts: []string{
				"takes up to 45s (drain delay 5s + drain timeout 30s + preStop 0s + grace period 10s)",
				"termination grace period is 30s: 15s over",
				"cut short drain connections, grace period",
				"stop signal would come 5s after the kubelet's SIGKILL",
			},
			dontWant: []string{"cut short drain delay"},
		},
		{
			name:      "only the grace period overruns",
			budget:    Budget{DrainDelay: 5 * s, PreStopTimeout: 10 * s, GracePeriod: 20 * s, TerminationGracePeriod: 30 * s},
			wantParts: []string{"5s over", "cut short grace period"},
			dontWant:  []string{"preStop hook", "stop signal would come"},
		},
		{
			name:      "fits but stop signal has under 2s",
			budget:    Budget{PreStopTimeout: 29 * s, GracePeriod: s, TerminationGracePeriod: 30 * s},
			wantParts: []string{"stop signal would come only 1s before the kubelet's SIGKILL (less than 2s)"},
			dontWant:  []string{"over"},
		},
		{
			name:   "stop signal after the kubelet's SIGKILL",
			budget: Budget{PreStopTimeout: 40 * s, GracePeriod: 10 * s, TerminationGracePeriod: 30 * s},
			wantParts: []string{
				"20s over", "cut short preStop hook, grace period",
				"stop signal would come 10s after the kubelet's SIGKILL",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.budget.Check()
			if tt.wantOK {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, part := range tt.wantParts {
				assert.Contains(t, err.Error(), part)
			}
			for _, part := range tt.dontWant {
				assert.NotContains(t, err.Error(), part)
			}
		})
	}
}

func TestBudgetTimeline(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name   string
		budget Budget
		want   []Step
	}{
		{
			name:   "everything configured",
			budget: Budget{DrainDelay: 5 * s, DrainTimeout: 10 * s, PreStopTimeout: 3 * s, GracePeriod: 10 * s, TerminationGracePeriod: 30 * s},
			want: []Step{
				{Name: "SIGTERM received"},
				{Name: "readiness off"},
				{Name: "drain delay", At: 0, Max: 5 * s},
				{Name: "drain connections", At: 5 * s, Max: 10 * s},
				{Name: "preStop hook", At: 15 * s, Max: 3 * s},
				{Name: "stop signal, grace period", At: 18 * s, Max: 10 * s},
				{Name: "SIGKILL", At: 28 * s},
				{Name: "kubelet SIGKILL", At: 30 * s},
			},
		},
		{
			name:   "defaults only",
			budget: Budget{GracePeriod: 10 * s},
			want: []Step{
				{Name: "SIGTERM received"},
				{Name: "readiness off"},
				{Name: "stop signal, grace period", At: 0, Max: 10 * s},
				{Name: "SIGKILL", At: 10 * s},
			},
		},
		{
			name:   "kubelet kills first",
			budget: Budget{DrainDelay: 20 * s, GracePeriod: 10 * s, TerminationGracePeriod: 25 * s},
			want: []Step{
				{Name: "SIGTERM received"},
				{Name: "readiness off"},
				{Name: "drain delay", At: 0, Max: 20 * s},
				{Name: "stop signal, grace period", At: 20 * s, Max: 10 * s},
				{Name: "kubelet SIGKILL", At: 25 * s},
				{Name: "SIGKILL", At: 30 * s},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.budget.Timeline())
		})
	}
}

func TestKubeletGrace(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name       string
		tgp, delay time.Duration
		want       time.Duration
	}{
		{"no preStop", 30 * s, 0, 30 * s},
		{"preStop sleep 5s", 30 * s, 5 * s, 25 * s},
		{"preStop eats all but 1s: the kubelet's 2s minimum", 30 * s, 29 * s, 2 * s},
		{"preStop as long as the period", 30 * s, 30 * s, 2 * s},
		{"preStop longer than the period is cut at it", 30 * s, 90 * s, 2 * s},
		{"tgp 0 still gets 2s", 0, 0, 2 * s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, KubeletGrace(tt.tgp, tt.delay))
		})
	}
}
