package settings

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestKubeStrictness: one decoder, two readings. What both accept they
// read into the same values; what lifecycled cannot call (a named port,
// headers, a second handler, an unknown field) only Strict refuses, and a
// value of the wrong shape is an error in both, AsKubelet's the YAML
// library's.
func TestKubeStrictness(t *testing.T) {
	decode := func(t *testing.T, mode Strictness, text string) (KubeProbe, error) {
		var doc yaml.Node
		require.NoError(t, yaml.Unmarshal([]byte(text), &doc))
		var p KubeProbe
		r := kubeReader{mode: mode}
		err := r.done(r.probe(&node{doc.Content[0], "readinessProbe"}, &p))
		return p, err
	}
	for _, tt := range []struct {
		name, yaml string
		want       KubeProbe
		strictErr  string // "": Strict reads want too
		shapeErr   string // "": AsKubelet reads want
	}{
		{name: "httpGet", yaml: "httpGet: {path: healthz, port: 8080, scheme: HTTPS}",
			want: KubeProbe{ProbeHandler: ProbeHandler{HTTPGet: &HTTPGetAction{Path: "healthz", Port: Port{Number: 8080}, Scheme: "HTTPS"}}}},
		{name: "exec", yaml: "exec: {command: [/app, check]}",
			want: KubeProbe{ProbeHandler: ProbeHandler{Exec: &ExecAction{Command: []string{"/app", "check"}}}}},
		{name: "grpc", yaml: "grpc: {port: 9000, service: app}",
			want: KubeProbe{ProbeHandler: ProbeHandler{GRPC: &GRPCAction{Port: 9000, Service: "app"}}}},
		{name: "named port", yaml: "tcpSocket: {port: http}",
			want:      KubeProbe{ProbeHandler: ProbeHandler{TCPSocket: &TCPSocketAction{Port: Port{Name: "http"}}}},
			strictErr: `line 1: readinessProbe.tcpSocket.port: "http": want a number 1-65535`},
		{name: "headers", yaml: "httpGet: {port: 80, httpHeaders: [{name: a, value: b}]}",
			want:      KubeProbe{ProbeHandler: ProbeHandler{HTTPGet: &HTTPGetAction{Port: Port{Number: 80}}}},
			strictErr: "line 1: readinessProbe.httpGet.httpHeaders: not supported"},
		{name: "two handlers", yaml: "{exec: {command: [x]}, tcpSocket: {port: 1}}",
			want:      KubeProbe{ProbeHandler: ProbeHandler{Exec: &ExecAction{Command: []string{"x"}}, TCPSocket: &TCPSocketAction{Port: Port{Number: 1}}}},
			strictErr: "line 1: readinessProbe: give exactly one of exec, httpGet, tcpSocket, grpc"},
		{name: "unknown field", yaml: "tcpSocket: {port: 1, hots: x}",
			want:      KubeProbe{ProbeHandler: ProbeHandler{TCPSocket: &TCPSocketAction{Port: Port{Number: 1}}}},
			strictErr: "line 1: field readinessProbe.tcpSocket.hots is not a known field"},
		{name: "wrong shape", yaml: "exec: {command: x}",
			strictErr: "line 1: readinessProbe.exec.command: want a list, not a value",
			shapeErr:  "line 1: cannot unmarshal !!str `x` into []string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(t, AsKubelet, tt.yaml)
			if tt.shapeErr != "" {
				var te *yaml.TypeError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, []string{tt.shapeErr}, te.Errors)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}
			got, err = decode(t, Strict, tt.yaml)
			if tt.strictErr != "" {
				assert.ErrorContains(t, err, tt.strictErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
