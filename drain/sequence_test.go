package drain

import (
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/lifecycled/lifecycled/hooks"
	"github.com/lifecycled/lifecycled/internal/proctest"
	"github.com/lifecycled/lifecycled/internal/promtest"
)

// steps records the onPhase callbacks with their times.
type steps struct {
	mu    sync.Mutex
	names []string
	at    map[string]time.Time
}

func (s *steps) record(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[string]time.Time{}
	}
	s.names = append(s.names, step)
	s.at[step] = time.Now()
}

func (s *steps) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.names...)
}

func (s *steps) time(step string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at[step]
}

func stampHook(file string) *hooks.Hook {
	return &hooks.Hook{Name: hooks.PreStop, Exec: helperCommand("stamp", file), Timeout: 20 * time.Second}
}

// The steps run in the contract's order: readiness off, drain delay,
// preStop, stop signal; and the sequence ends when the child exits, long
// before the grace period.
func TestSequenceOrder(t *testing.T) {
	proc, events := startHelper(t, "exit-on-term")
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	hm := hooks.NewMetrics(reg)
	var rec steps
	cfg := Config{DrainDelay: 150 * time.Millisecond, PreStop: stampHook(events), GracePeriod: 20 * time.Second}
	seq := NewSequence(cfg, proc, hooks.NewRunner(testReaper, zap.NewNop(), nil, hm, ""), zap.NewNop(), m, rec.record)

	start := time.Now()
	var killed bool
	took := proctest.Within(t, 15*time.Second, func() { killed = seq.Run(nil) })

	assert.False(t, killed)
	assert.Less(t, took, 10*time.Second, "returned at the grace period, not when the child exited")
	assert.Equal(t, []string{StepDraining, StepDrainDelay, StepPreStop, StepGrace}, rec.list())
	assert.Less(t, rec.time(StepDraining).Sub(start), 100*time.Millisecond, "readiness must fail at once")

	got := readEvents(t, events)
	require.Contains(t, got, "stamp", "preStop did not run")
	require.Contains(t, got, "TERM", "child got no SIGTERM")
	assert.GreaterOrEqual(t, got["stamp"], start.Add(cfg.DrainDelay).UnixNano(), "preStop ran before the drain delay was over")
	assert.Greater(t, got["TERM"], got["stamp"], "stop signal before preStop finished")

	signals, kills := proc.sent()
	assert.Equal(t, []syscall.Signal{syscall.SIGTERM}, signals)
	assert.Zero(t, kills)
	assert.Equal(t, 0, proc.exitStatus(t).ExitStatus())

	assert.GreaterOrEqual(t, gaugeOf(t, reg, StepDrainDelay), 0.15)
	assert.Positive(t, gaugeOf(t, reg, StepPreStop))
	assert.Positive(t, gaugeOf(t, reg, StepGrace))
	assert.Zero(t, gaugeOf(t, reg, StepDrainConnections), "step not configured")
	assert.Equal(t, uint64(1), promtest.HistogramCount(t, reg, "lifecycled_hook_duration_seconds",
		map[string]string{"hook": hooks.PreStop, "result": "success"}), "one preStop run recorded")
}

func TestSequenceGracePeriod(t *testing.T) {
	tests := []struct {
		name       string
		mode       string
		grace      time.Duration
		wantKilled bool
		wantSteps  []string
		atLeast    time.Duration
		atMost     time.Duration
	}{
		{
			name: "ignores SIGTERM: killed at the grace period", mode: "ignore-term",
			grace: 300 * time.Millisecond, wantKilled: true,
			wantSteps: []string{StepDraining, StepGrace, StepKill},
			atLeast:   300 * time.Millisecond, atMost: 5 * time.Second,
		},
		{
			name: "exits on SIGTERM: grace period is a ceiling", mode: "exit-on-term",
			grace: 20 * time.Second, wantKilled: false,
			wantSteps: []string{StepDraining, StepGrace},
			atLeast:   0, atMost: 5 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc, _ := startHelper(t, tt.mode)
			var rec steps
			seq := NewSequence(Config{GracePeriod: tt.grace}, proc, nil, zap.NewNop(), nil, rec.record)

			var killed bool
			took := proctest.Within(t, tt.atMost+10*time.Second, func() { killed = seq.Run(nil) })

			assert.Equal(t, tt.wantKilled, killed)
			assert.GreaterOrEqual(t, took, tt.atLeast)
			assert.Less(t, took, tt.atMost)
			assert.Equal(t, tt.wantSteps, rec.list())
			select {
			case <-proc.Done():
			default:
				t.Error("Run returned before the process group was gone")
			}
			ws := proc.exitStatus(t)
			if tt.wantKilled {
				assert.True(t, ws.Signaled())
				assert.Equal(t, syscall.SIGKILL, ws.Signal())
			} else {
				assert.Equal(t, 0, ws.ExitStatus())
			}
		})
	}
}

// A second SIGTERM skips what is left of the drain, including a running
// preStop hook, whether the skip channel is closed or sent on.
func TestSequenceSkip(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		trigger func(chan struct{})
		cut     string
	}{
		{
			name:    "close cuts the drain delay",
			cfg:     Config{DrainDelay: 30 * time.Second},
			trigger: func(c chan struct{}) { close(c) },
			cut:     StepDrainDelay,
		},
		{
			name:    "send cuts the drain delay",
			cfg:     Config{DrainDelay: 30 * time.Second},
			trigger: func(c chan struct{}) { c <- struct{}{} },
			cut:     StepDrainDelay,
		},
		{
			name:    "close cancels preStop",
			cfg:     Config{PreStop: &hooks.Hook{Name: hooks.PreStop, Sleep: 30 * time.Second, Timeout: time.Minute}},
			trigger: func(c chan struct{}) { close(c) },
			cut:     StepPreStop,
		},
		{
			name:    "close cancels an exec preStop",
			cfg:     Config{DrainDelay: 10 * time.Millisecond, PreStop: &hooks.Hook{Name: hooks.PreStop, Exec: []string{"sleep", "30"}, Timeout: time.Minute}},
			trigger: func(c chan struct{}) { close(c) },
			cut:     StepPreStop,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc, events := startHelper(t, "exit-on-term")
			logger, logs := observed()
			var rec steps
			tt.cfg.GracePeriod = 20 * time.Second
			seq := NewSequence(tt.cfg, proc, hooks.NewRunner(testReaper, logger, nil, nil, ""), logger, nil, rec.record)

			skip := make(chan struct{}, 1)
			time.AfterFunc(200*time.Millisecond, func() { tt.trigger(skip) })
			var killed bool
			took := proctest.Within(t, 20*time.Second, func() { killed = seq.Run(skip) })

			assert.False(t, killed)
			assert.GreaterOrEqual(t, took, 200*time.Millisecond)
			assert.Less(t, took, 5*time.Second, "skip did not cut the %s", tt.cut)
			assert.Contains(t, rec.list(), tt.cut)
			assert.Contains(t, readEvents(t, events), "TERM", "the stop signal must still be sent")
			assert.Equal(t, 1, logs.FilterMessage("second stop signal: skipping the rest of the drain and preStop").Len())
			if tt.cut == StepPreStop {
				// Cut short on purpose: no failure of the hook's own.
				assert.Zero(t, logs.FilterMessage("hook failed").Len())
				cut := logs.FilterMessage("preStop interrupted").All()
				require.Len(t, cut, 1)
				assert.Equal(t, zap.InfoLevel, cut[0].Level)
				assert.Equal(t, "second stop signal", cut[0].ContextMap()["reason"])
			}
		})
	}
}

// A child that exits during the drain ends the sequence: no preStop, no
// signal.
func TestSequenceChildExitsWhileDraining(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(stamp string) Config
	}{
		{"during drain delay", func(stamp string) Config {
			return Config{DrainDelay: 30 * time.Second, PreStop: stampHook(stamp)}
		}},
		{"during preStop", func(string) Config {
			return Config{PreStop: &hooks.Hook{Name: hooks.PreStop, Sleep: 30 * time.Second, Timeout: time.Minute}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc, events := startHelper(t, "exit-after", "200ms")
			var rec steps
			seq := NewSequence(tt.cfg(events), proc, nil, zap.NewNop(), nil, rec.record)

			var killed bool
			took := proctest.Within(t, 20*time.Second, func() { killed = seq.Run(nil) })

			assert.False(t, killed)
			assert.Less(t, took, 5*time.Second, "sequence went on after the child exited")
			assert.NotContains(t, rec.list(), StepGrace)
			signals, kills := proc.sent()
			assert.Empty(t, signals)
			assert.Zero(t, kills)
			assert.NotContains(t, readEvents(t, events), "stamp", "preStop ran after the child exited")
		})
	}
}

func TestSequenceDrainConnections(t *testing.T) {
	tests := []struct {
		name         string
		closeAfter   time.Duration // 0: never
		drainTimeout time.Duration
		wantAtLeast  time.Duration
	}{
		{name: "waits until the last connection closes", closeAfter: 300 * time.Millisecond, drainTimeout: 20 * time.Second, wantAtLeast: 300 * time.Millisecond},
		{name: "gives up at the drain timeout", drainTimeout: 300 * time.Millisecond, wantAtLeast: 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, closeConn := proctest.HeldConn(t)
			require.Eventually(t, func() bool {
				n, err := establishedConns("/proc", port)
				return err == nil && n == 1
			}, 5*time.Second, 10*time.Millisecond)

			proc, events := startHelper(t, "exit-on-term")
			var rec steps
			cfg := Config{
				DrainPort: port, DrainTimeout: tt.drainTimeout, PollConns: 20 * time.Millisecond,
				PreStop: stampHook(events), GracePeriod: 20 * time.Second,
			}
			seq := NewSequence(cfg, proc, hooks.NewRunner(testReaper, zap.NewNop(), nil, nil, ""), zap.NewNop(), nil, rec.record)
			if tt.closeAfter > 0 {
				time.AfterFunc(tt.closeAfter, closeConn)
			}

			start := time.Now()
			proctest.Within(t, 20*time.Second, func() { seq.Run(nil) })

			assert.Equal(t, []string{StepDraining, StepDrainConnections, StepPreStop, StepGrace}, rec.list())
			got := readEvents(t, events)
			require.Contains(t, got, "stamp")
			waited := time.Duration(got["stamp"] - start.UnixNano())
			assert.GreaterOrEqual(t, waited, tt.wantAtLeast, "preStop ran while connections were open")
			assert.Less(t, waited, 5*time.Second)
		})
	}
}

// gaugeOf reads lifecycled_stop_phase_seconds{step} as a scrape would.
func gaugeOf(t *testing.T, reg prometheus.Gatherer, step string) float64 {
	t.Helper()
	return promtest.Value(t, reg, "lifecycled_stop_phase_seconds", map[string]string{"step": step})
}

// A child that exits during the drain while a member of its process group
// lingers: the waits end with the child, and what it left still gets the
// stop signal (and no SIGKILL, since it obeys).
func TestSequenceChildExitsLeavingGroupMembers(t *testing.T) {
	dir := t.TempDir()
	marker := dir + "/lingerer.ready"
	proc := startProc(t, "/bin/sh", "-c",
		`sh -c 'trap "exit 0" TERM; : > "$0"; while :; do sleep 0.05; done' "`+marker+`" &
		while [ ! -e "`+marker+`" ]; do sleep 0.01; done; sleep 0.2`)
	var rec steps
	seq := NewSequence(Config{DrainDelay: 30 * time.Second, GracePeriod: 20 * time.Second}, proc,
		hooks.NewRunner(testReaper, zap.NewNop(), nil, nil, ""), zap.NewNop(), nil, rec.record)

	var killed bool
	took := proctest.Within(t, 15*time.Second, func() { killed = seq.Run(nil) })

	assert.False(t, killed, "the lingerer obeys the stop signal")
	assert.Less(t, took, 10*time.Second, "the drain delay ends when the child exits")
	assert.Equal(t, []string{StepDraining, StepDrainDelay, StepGrace}, rec.list())
	signals, kills := proc.sent()
	assert.Equal(t, []syscall.Signal{syscall.SIGTERM}, signals)
	assert.Zero(t, kills)
	select {
	case <-proc.Done():
	default:
		t.Fatal("Run returned before the process group was gone")
	}
}
