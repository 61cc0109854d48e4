package lifecycle

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/drain"
	"github.com/lifecycled/lifecycled/internal/kubeevent"
)

// The report's line goes into the termination message after the reason
// only where it cuts neither the reason nor a byte of the failed child's
// stderr tail.
func TestTerminationMessageReport(t *testing.T) {
	const reason = "child killed by SIGKILL (phase draining); stopped: received SIGTERM"
	const report = "drain report: last connection +1s, last request byte +1.2s; SIGKILL needed, 2 connection(s) cut; took 12s"
	tests := []struct {
		name string
		tail string
		max  int
		want string
	}{
		{name: "no tail: reason and report", max: MaxTerminationMessage, want: reason + "\n" + report},
		{name: "a short tail: all three", tail: "panic: boom\n", max: MaxTerminationMessage,
			want: reason + "\n" + report + stderrTailHeader + "panic: boom\n"},
		{name: "a tail the report would cut: no report", tail: strings.Repeat("x", 3900), max: MaxTerminationMessage,
			want: terminationMessage(reason, []byte(strings.Repeat("x", 3900)), MaxTerminationMessage)},
		{name: "no room after the reason: no report", max: len(reason) + 10, want: reason},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withReport(reason, report, []byte(tt.tail), tt.max)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, len(got), tt.max)
		})
	}
}

// A stop ends with one "drain report" line, and its summary in the
// termination message.
func TestRunDrainReportLine(t *testing.T) {
	c := newFakeChild(exitOn(syscall.SIGKILL))
	h := newHarness(t, Config{Stop: drain.Config{GracePeriod: 50 * time.Millisecond, TerminationGracePeriod: 30 * time.Second}}, c, nil)
	code := h.run(t, context.Background())
	h.started(t)
	h.l.Signal(syscall.SIGTERM)
	assert.Equal(t, 137, h.wait(t, code))

	reports := h.logs.FilterMessage("drain report").All()
	require.Len(t, reports, 1)
	fields := reports[0].ContextMap()
	assert.Equal(t, true, fields["sigkill"])
	assert.Contains(t, fields, "took_seconds")
	assert.Contains(t, fields, "grace_used")
	assert.EqualValues(t, 30, fields["termination_grace_period_seconds"])
	assert.Regexp(t, `^drain report: traffic not watched \(no port of the app known\); stop signal at \+0s; SIGKILL needed; took 0\.\d+s of 30s grace \(\d+%\)$`,
		h.terminationReport(t))
}

// apiServer is a TLS server on 127.0.0.1 standing in for the API server,
// with the pod's service-account directory and environment pointing at it.
func apiServer(t *testing.T, env map[string]string) (kubeevent.InCluster, <-chan map[string]any) {
	t.Helper()
	events := make(chan map[string]any, 4)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/api/v1/namespaces/shop/events" && json.Unmarshal(b, &ev) == nil {
			events <- ev
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("t"), 0o600))
	host, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	all := map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port, "POD_NAME": "shop-1", "POD_NAMESPACE": "shop"}
	for k, v := range env {
		all[k] = v
	}
	return kubeevent.InCluster{Getenv: func(k string) string { return all[k] }, Dir: dir}, events
}

// --events posts the report as an Event on the pod: Warning when the stop
// needed SIGKILL, Normal otherwise; nothing without --events; and a pod
// that lacks what it needs gets one line, the run ending as it would.
func TestRunDrainEvent(t *testing.T) {
	tests := []struct {
		name       string
		events     bool
		env        map[string]string
		exitOn     syscall.Signal
		code       int
		wantType   string
		wantReason string
		wantWarn   string
	}{
		{name: "SIGKILL needed: Warning", events: true, exitOn: syscall.SIGKILL, code: 137, wantType: "Warning", wantReason: "DrainCutShort"},
		{name: "a clean stop: Normal", events: true, exitOn: syscall.SIGTERM, code: 143, wantType: "Normal", wantReason: "Drained"},
		{name: "off by default", exitOn: syscall.SIGTERM, code: 143},
		{name: "no POD_NAME: one line", events: true, env: map[string]string{"POD_NAME": ""}, exitOn: syscall.SIGTERM, code: 143,
			wantWarn: "POD_NAME (env valueFrom fieldRef metadata.name)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeChild(exitOn(tt.exitOn))
			h := newHarness(t, Config{Events: tt.events, Stop: drain.Config{GracePeriod: 50 * time.Millisecond}}, c, nil)
			var events <-chan map[string]any
			h.l.events, events = apiServer(t, tt.env)
			code := h.run(t, context.Background())
			h.started(t)
			h.l.Signal(syscall.SIGTERM)
			assert.Equal(t, tt.code, h.wait(t, code))

			warnings := h.logs.FilterMessage("cannot post the drain report as a Kubernetes Event (--events)").All()
			if tt.wantWarn != "" {
				require.Len(t, warnings, 1)
				assert.Contains(t, warnings[0].ContextMap()["error"], tt.wantWarn)
			} else {
				assert.Empty(t, warnings)
			}
			if tt.wantType == "" {
				assert.Empty(t, events, "no Event posted")
				return
			}
			require.Len(t, events, 1)
			ev := <-events
			assert.Equal(t, tt.wantType, ev["type"])
			assert.Equal(t, tt.wantReason, ev["reason"])
			assert.Equal(t, h.terminationReport(t), ev["message"], "the same summary as the termination message")
			assert.Equal(t, "shop-1", ev["involvedObject"].(map[string]any)["name"])
		})
	}
}
