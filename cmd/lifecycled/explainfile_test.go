package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/yamlnode"
)

// exampleImages are the images of examples/ whose ENTRYPOINT is lifecycled
// (examples/README.md).
var exampleImages = []string{"--image", "localhost/lifecycled", "--image", "localhost/lifecycled-demo"}

// explainFile runs `lifecycled explain -f` on manifest (written to a
// file) with extra arguments.
func explainFile(t *testing.T, manifest string, extra ...string) (code int, stdout, stderr string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.yaml")
	require.NoError(t, os.WriteFile(path, []byte(manifest), 0o644))
	var out, errOut bytes.Buffer
	code = dispatch(append([]string{"explain", "-f", path}, extra...), &out, &errOut)
	return code, strings.ReplaceAll(out.String(), path, "FILE"), strings.ReplaceAll(errOut.String(), path, "FILE")
}

// problemLines are the lines of explain -f's verdict.
func problemLines(stdout string) []string {
	_, after, ok := strings.Cut(stdout, "\nProblems:\n")
	if !ok {
		return nil
	}
	return strings.Split(strings.TrimSuffix(after, "\n"), "\n")
}

func TestExplainFileExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(append([]string{"explain", "-f", f}, exampleImages...), &out, &errOut)
			assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			assert.Empty(t, errOut.String())
			assert.Contains(t, out.String(), "Stop sequence")
			assert.Contains(t, out.String(), "No problems found.")
			assert.NotContains(t, out.String(), "DOES NOT FIT")
		})
	}
}

// The examples' images run lifecycled as ENTRYPOINT: without --image
// nothing in them is checked, and explain -f says so rather than passing.
func TestExplainFileNeedsImageForEntrypointImages(t *testing.T) {
	var out, errOut bytes.Buffer
	code := dispatch([]string{"explain", "-f", "../../examples/deployment-entrypoint.yaml"}, &out, &errOut)
	assert.Equal(t, 1, code)
	assert.Equal(t, []string{"../../examples/deployment-entrypoint.yaml: no container runs lifecycled: its command[0] must be lifecycled, or its image one given with --image IMAGE (an image whose ENTRYPOINT is lifecycled)"},
		problemLines(out.String()))
}

// podBase is a Pod that explain -f finds fine; the variants below break it
// one way each.
const podBase = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: web
    image: registry.example/app:1
    command: ["/usr/local/bin/lifecycled"]
    args: [--listen, ":9090", --drain-delay, 5s, --termination-log, /dev/termination-log, --, /app]
    ports:
    - {name: lifecycle, containerPort: 9090}
    readinessProbe:
      httpGet: {path: /readyz, port: lifecycle}
    livenessProbe:
      httpGet: {path: /livez, port: 9090}
    startupProbe:
      httpGet: {path: /startupz, port: 9090}
`

// jobBase is a Job whose proxy stops once main has exited (--exit-with).
const jobBase = `apiVersion: batch/v1
kind: Job
metadata:
  name: report
spec:
  template:
    spec:
      restartPolicy: Never
      volumes:
      - {name: lifecycle, emptyDir: {}}
      - {name: other, emptyDir: {}}
      containers:
      - name: main
        image: app:1
        command: [lifecycled, --tombstone-dir, /lifecycle, --name, main, --, /report]
        volumeMounts: [{name: lifecycle, mountPath: /lifecycle}]
      - name: proxy
        image: proxy:1
        command: [lifecycled]
        args: [--tombstone-dir, /run/tomb, --exit-with, main, --grace-period, 5s, --, /proxy]
        volumeMounts: [{name: lifecycle, mountPath: /run/tomb}]
`

// sidecarBase is a Deployment with a native sidecar under lifecycled.
const sidecarBase = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 30
      initContainers:
      - name: proxy
        image: proxy:1
        restartPolicy: Always
        command: [lifecycled, --listen, ":9091", --post-start, '["/lifecycled","wait","http://127.0.0.1:15000/"]', --grace-period, 5s, --, /proxy]
        startupProbe:
          httpGet: {path: /startupz, port: 9091}
        readinessProbe:
          httpGet: {path: /readyz, port: 9091}
      containers:
      - name: shop
        image: shop:1
        command: [lifecycled, --drain-delay, 5s, --, /app]
`

// configMap holds a config file for podBase; configMounted mounts it and
// gives --config.
const configMap = `---
apiVersion: v1
kind: ConfigMap
metadata: {name: lc}
data:
  config.yaml: |
    gracePeriod: 40s
`

var configMounted = []string{
	"--drain-delay, 5s,", "--drain-delay, 5s, --config, /etc/lc/config.yaml,",
	"    ports:\n", "    volumeMounts: [{name: cfg, mountPath: /etc/lc}]\n    ports:\n",
	"spec:\n", "spec:\n  volumes: [{name: cfg, configMap: {name: lc}}]\n",
}

// threeMore are three containers more for podBase.
const threeMore = "  - {name: a, image: a}\n  - {name: b, image: b}\n  - {name: c, image: c}\n"

func TestExplainFileProblems(t *testing.T) {
	tests := []struct {
		name     string
		base     string
		replace  []string // old, new, old, new...
		wantCode int
		// want are substrings of the one problem line expected (of
		// each, in order, when there are several).
		want [][]string
		// wantOut are substrings of the timeline.
		wantOut []string
	}{
		{name: "pod fine", base: podBase, wantCode: 0},
		{name: "job fine", base: jobBase, wantCode: 0},
		{name: "sidecar fine", base: sidecarBase, wantCode: 0,
			wantOut: []string{"native sidecar proxy", "The kubelet's SIGTERM comes 15s into the pod's termination (a native sidecar, it waits until shop stopped: up to 15s); lifecycled then has 15s"}},
		{
			name: "grace period too short", base: podBase,
			replace:  []string{"terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 12"},
			wantCode: 1,
			want:     [][]string{{"FILE: Pod/web container web: the stop sequence takes up to 15s", "termination grace period is 12s: 3s over"}},
			wantOut:  []string{"Budget: DOES NOT FIT"},
		},
		{
			name: "grace period unset is 30s", base: podBase,
			replace:  []string{"  terminationGracePeriodSeconds: 30\n", "", "--drain-delay, 5s", "--drain-delay, 25s"},
			wantCode: 1,
			want:     [][]string{{"the stop sequence takes up to 35s", "termination grace period is 30s: 5s over"}},
		},
		{
			name: "kubelet preStop sleep eats the budget", base: podBase,
			replace:  []string{"    ports:\n", "    lifecycle: {preStop: {sleep: {seconds: 20}}}\n    ports:\n"},
			wantCode: 1,
			want:     [][]string{{"container web: the kubelet leaves lifecycled 10s of terminationGracePeriodSeconds 30s (its SIGTERM comes at 20s: the kubelet's preStop sleep 20s): the stop sequence takes up to 15s"}},
			wantOut:  []string{"The kubelet's SIGTERM comes 20s into the pod's termination"},
		},
		{
			name: "kubelet preStop longer than the period leaves the 2s minimum", base: podBase,
			replace:  []string{"    ports:\n", "    lifecycle: {preStop: {sleep: {seconds: 45}}}\n    ports:\n"},
			wantCode: 1,
			want:     [][]string{{"the kubelet leaves lifecycled 2s of terminationGracePeriodSeconds 30s (its SIGTERM comes at 30s: the kubelet's preStop sleep 45s)"}},
		},
		{
			name: "exit-with in a job retried on failure", base: jobBase,
			replace:  []string{"restartPolicy: Never", "restartPolicy: OnFailure"},
			wantCode: 1,
			want: [][]string{{"FILE: Job/report container proxy: --exit-with in a pod with restartPolicy OnFailure: when main fails, the kubelet restarts it",
				"the retry runs without it", "native sidecar", "an init container with restartPolicy: Always"}},
		},
		{name: "exit-with in a job that does not retry in place", base: jobBase, wantCode: 0},
		{
			name: "termination-log tail cut by the kubelet in a pod of 4", base: podBase,
			replace: []string{"--termination-log, /dev/termination-log,", "--termination-log, /dev/termination-log, --termination-log-tail,",
				"    startupProbe:\n      httpGet: {path: /startupz, port: 9090}\n", "    startupProbe:\n      httpGet: {path: /startupz, port: 9090}\n" + threeMore},
			wantCode: 1,
			want: [][]string{{"container web: --termination-log-max 4096, but in a pod of 4 containers and init containers the kubelet keeps only the first 3072 bytes of each termination message (12288 / 4)",
				"the newest 1024 bytes of the stderr tail", "give --termination-log-max 3072"}},
		},
		{
			name: "termination-log-max within the kubelet's cut", base: podBase,
			replace: []string{"--termination-log, /dev/termination-log,", "--termination-log, /dev/termination-log, --termination-log-tail, --termination-log-max, 3072,",
				"    startupProbe:\n      httpGet: {path: /startupz, port: 9090}\n", "    startupProbe:\n      httpGet: {path: /startupz, port: 9090}\n" + threeMore},
			wantCode: 0,
		},
		{
			name: "termination-log tail in a pod of 3 containers", base: podBase,
			replace: []string{"--termination-log, /dev/termination-log,", "--termination-log, /dev/termination-log, --termination-log-tail,",
				"    startupProbe:\n      httpGet: {path: /startupz, port: 9090}\n", "    startupProbe:\n      httpGet: {path: /startupz, port: 9090}\n  - {name: a, image: a}\n  - {name: b, image: b}\n"},
			wantCode: 0,
		},
		{
			name: "no drain delay", base: podBase,
			replace:  []string{"--drain-delay, 5s, ", ""},
			wantCode: 1,
			want:     [][]string{{"no --drain-delay (nor a kubelet preStop sleep): the app gets its stop signal while endpoints and kube-proxy still send it requests"}},
		},
		{
			name: "no drain delay but a kubelet preStop sleep", base: podBase,
			replace:  []string{"--drain-delay, 5s, ", "", "    ports:\n", "    lifecycle: {preStop: {sleep: {seconds: 5}}}\n    ports:\n"},
			wantCode: 0,
		},
		{
			name: "kubelet preStop exec sleep that fits", base: podBase,
			replace:  []string{"    ports:\n", "    lifecycle: {preStop: {exec: {command: [sh, -c, sleep 5]}}}\n    ports:\n"},
			wantCode: 0,
			wantOut:  []string{"The kubelet's SIGTERM comes 5s into the pod's termination (the kubelet's preStop exec [\"sh\", \"-c\", \"sleep 5\"]); lifecycled then has 25s"},
		},
		{
			name: "kubelet preStop of unknown length", base: podBase,
			replace:  []string{"    ports:\n", "    lifecycle: {preStop: {httpGet: {path: /drain, port: 8080}}}\n    ports:\n"},
			wantCode: 1,
			want:     [][]string{{"the kubelet's preStop httpGet port 8080 path /drain runs before lifecycled gets SIGTERM, for a time the manifest does not say"}},
			wantOut:  []string{"(the kubelet's preStop httpGet port 8080 path /drain, of a length the manifest does not say, counted as 0)"},
		},
		{
			name: "probe on a wrong port", base: podBase,
			replace:  []string{"path: /readyz, port: lifecycle", "path: /readyz, port: 9091"},
			wantCode: 1,
			want:     [][]string{{"container web: readinessProbe asks port 9091 for /readyz, but lifecycled listens on :9090 (port 9090)"}},
		},
		{
			name: "readyz as liveness", base: podBase,
			replace:  []string{"path: /livez, port: 9090", "path: /readyz, port: 9090"},
			wantCode: 1,
			want:     [][]string{{"livenessProbe asks lifecycled for /readyz", "restart trap", "use /livez"}},
		},
		{
			name: "livez as readiness", base: podBase,
			replace:  []string{"path: /readyz, port: lifecycle", "path: /livez, port: lifecycle"},
			wantCode: 1,
			want:     [][]string{{"readinessProbe asks lifecycled for /livez", "use /readyz"}},
		},
		{
			name: "unknown path", base: podBase,
			replace:  []string{"path: /startupz", "path: /healthz"},
			wantCode: 1,
			want:     [][]string{{"startupProbe asks lifecycled (port 9090) for /healthz, which it does not serve (404); use /startupz"}},
		},
		{
			name: "named port that does not exist", base: podBase,
			replace:  []string{"port: lifecycle}", "port: health}"},
			wantCode: 1,
			want:     [][]string{{`readinessProbe: port "health" is not a named port of the container (its ports: lifecycle)`}},
		},
		{
			name: "readiness on the app, not lifecycled", base: podBase,
			replace:  []string{"path: /readyz, port: lifecycle", "path: /, port: 8080"},
			wantCode: 1,
			want:     [][]string{{"readinessProbe (httpGet port 8080 path /) does not ask lifecycled's /readyz on port 9090"}},
		},
		{
			name: "tcpSocket readiness on lifecycled", base: podBase,
			replace:  []string{"httpGet: {path: /readyz, port: lifecycle}", "tcpSocket: {port: 9090}"},
			wantCode: 1,
			want:     [][]string{{"readinessProbe is a tcpSocket on lifecycled's port 9090"}},
		},
		{
			name: "readinessProbe missing", base: podBase,
			replace:  []string{"    readinessProbe:\n      httpGet: {path: /readyz, port: lifecycle}\n", ""},
			wantCode: 1,
			want:     [][]string{{"--listen :9090 serves /readyz, but the container has no readinessProbe"}},
		},
		{
			name: "listen on loopback", base: podBase,
			replace:  []string{`--listen, ":9090"`, `--listen, "127.0.0.1:9090"`},
			wantCode: 1,
			want: [][]string{
				{"readinessProbe goes to port 9090, but --listen 127.0.0.1:9090 answers on loopback only"},
				{"livenessProbe goes to port 9090"},
				{"startupProbe goes to port 9090"},
			},
		},
		{
			name: "--ready on lifecycled's own port", base: podBase,
			replace:  []string{"--drain-delay, 5s,", "--drain-delay, 5s, --ready, 'http://127.0.0.1:9090/readyz',"},
			wantCode: 1,
			want:     [][]string{{"--ready http://127.0.0.1:9090/readyz asks lifecycled's own port 9090: its readiness would wait for itself"}},
		},
		{
			name: "probe host on loopback", base: podBase,
			replace:  []string{"httpGet: {path: /readyz, port: lifecycle}", "httpGet: {path: /readyz, port: lifecycle, host: 127.0.0.1}"},
			wantCode: 1,
			want:     [][]string{{"readinessProbe has host 127.0.0.1: the kubelet probes from the node"}},
		},
		{
			name: "probe host on loopback with hostNetwork", base: podBase,
			replace:  []string{"httpGet: {path: /readyz, port: lifecycle}", "httpGet: {path: /readyz, port: lifecycle, host: 127.0.0.1}", "spec:\n", "spec:\n  hostNetwork: true\n"},
			wantCode: 0,
		},
		{
			name: "termination message path mismatch", base: podBase,
			replace:  []string{"    ports:\n", "    terminationMessagePath: /tmp/message\n    ports:\n"},
			wantCode: 1,
			want:     [][]string{{"--termination-log /dev/termination-log, but the kubelet reads the termination message from terminationMessagePath /tmp/message"}},
		},
		{
			name: "termination log elsewhere than the default", base: podBase,
			replace:  []string{"--termination-log, /dev/termination-log", "--termination-log, /tmp/why"},
			wantCode: 1,
			want:     [][]string{{"--termination-log /tmp/why, but the kubelet reads the termination message from terminationMessagePath /dev/termination-log"}},
		},
		{
			name: "stop signal lifecycled does not drain on", base: podBase,
			replace:  []string{"    ports:\n", "    lifecycle: {stopSignal: SIGUSR1}\n    ports:\n"},
			wantCode: 1,
			want:     [][]string{{"lifecycle.stopSignal SIGUSR1: lifecycled starts its stop sequence on SIGTERM or SIGINT only"}},
		},
		{
			name: "termination-grace-period flag larger than what the kubelet leaves", base: podBase,
			replace: []string{"--drain-delay, 5s,", "--drain-delay, 5s, --termination-grace-period, 30s,",
				"    ports:\n", "    lifecycle: {preStop: {sleep: {seconds: 10}}}\n    ports:\n"},
			wantCode: 1,
			want:     [][]string{{"--termination-grace-period 30s, but the kubelet leaves lifecycled 20s"}},
		},
		{
			name: "liveness probe's own grace period", base: podBase,
			replace:  []string{"path: /livez, port: 9090}\n", "path: /livez, port: 9090}\n      terminationGracePeriodSeconds: 8\n"},
			wantCode: 1,
			want:     [][]string{{"livenessProbe.terminationGracePeriodSeconds 8s: when the probe fails the stop sequence does not fit"}},
		},
		{
			name: "arguments lifecycled refuses", base: podBase,
			replace:  []string{"--drain-delay, 5s", "--drain-delay, soon"},
			wantCode: 1,
			want:     [][]string{{"container web: lifecycled would refuse its arguments and exit 2: ", "drain-delay"}},
			wantOut:  []string{"lifecycled would refuse its arguments: see Problems below."},
		},
		{
			name: "environment read as lifecycled reads it", base: podBase,
			replace:  []string{"    ports:\n", "    env: [{name: LIFECYCLED_GRACE_PERIOD, value: 40s}]\n    ports:\n"},
			wantCode: 1,
			want:     [][]string{{"the stop sequence takes up to 45s", "grace period 40s"}},
		},
		{
			name: "unknown LIFECYCLED_ variable: the container would exit 2", base: podBase,
			replace:  []string{"    ports:\n", "    env: [{name: LIFECYCLED_DRAIN_DEALY, value: 5s}]\n    ports:\n"},
			wantCode: 1,
			want: [][]string{{"container web: lifecycled would refuse its arguments and exit 2: ",
				"unknown environment variable LIFECYCLED_DRAIN_DEALY (did you mean LIFECYCLED_DRAIN_DELAY?)"}},
		},
		{
			name: "$(VAR) in args expanded as the kubelet does", base: podBase,
			replace:  []string{`--listen, ":9090"`, `--listen, ":$(HEALTH_PORT)"`, "    ports:\n", "    env: [{name: HEALTH_PORT, value: \"9090\"}]\n    ports:\n"},
			wantCode: 0,
			wantOut:  []string{"endpoints on :9090"},
		},
		{
			name: "setting from valueFrom", base: podBase,
			replace:  []string{"    ports:\n", "    env: [{name: LIFECYCLED_DRAIN_DELAY, valueFrom: {configMapKeyRef: {name: c, key: k}}}]\n    ports:\n"},
			wantCode: 1,
			want:     [][]string{{"LIFECYCLED_DRAIN_DELAY comes from valueFrom"}},
		},
		{
			name: "config file in the container", base: podBase,
			replace:  []string{"--drain-delay, 5s,", "--drain-delay, 5s, --config, /etc/lifecycled.yaml,"},
			wantCode: 1,
			want:     [][]string{{"--config /etc/lifecycled.yaml is not in a ConfigMap of this manifest mounted there: explain -f checked without it"}},
		},
		{
			name: "config file from the manifest's ConfigMap", base: podBase + configMap,
			replace:  configMounted,
			wantCode: 1,
			want:     [][]string{{"the stop sequence takes up to 45s", "grace period 40s"}},
			wantOut:  []string{"SIGKILL at 45s"},
		},
		{
			name: "config file from a ConfigMap's item", base: podBase + configMap,
			replace: append(slices.Clone(configMounted),
				"volumes: [{name: cfg, configMap: {name: lc}}]", "volumes: [{name: cfg, configMap: {name: lc, items: [{key: config.yaml, path: conf/l.yaml}]}}]",
				"--config, /etc/lc/config.yaml", "--config, /etc/lc/conf/l.yaml"),
			wantCode: 1,
			want:     [][]string{{"grace period 40s"}},
		},
		{
			name: "config file the ConfigMap lacks", base: podBase + configMap,
			replace:  append(slices.Clone(configMounted), "--config, /etc/lc/config.yaml", "--config, /etc/lc/other.yaml"),
			wantCode: 1,
			want:     [][]string{{"lifecycled would refuse its arguments and exit 2: --config: open /etc/lc/other.yaml: no such file: ConfigMap lc mounted there has no key for it"}},
		},
		{
			name: "config file with an unknown field", base: podBase + configMap,
			replace:  append(slices.Clone(configMounted), "gracePeriod: 40s", "gracePeriode: 40s"),
			wantCode: 1,
			want:     [][]string{{"lifecycled would refuse its arguments and exit 2: --config /etc/lc/config.yaml: ", "gracePeriode"}},
		},
		{
			name: "port taken by another container", base: podBase,
			replace:  []string{"    startupProbe:\n      httpGet: {path: /startupz, port: 9090}\n", "    startupProbe:\n      httpGet: {path: /startupz, port: 9090}\n  - name: metrics\n    image: m:1\n    ports: [{containerPort: 9090}]\n"},
			wantCode: 1,
			want:     [][]string{{"--listen :9090: port 9090 is also containerPort of container metrics"}},
		},
		{
			name: "no lifecycled in the file", base: podBase,
			replace:  []string{`command: ["/usr/local/bin/lifecycled"]`, `command: ["/app"]`},
			wantCode: 1,
			want:     [][]string{{"FILE: no container runs lifecycled"}},
			wantOut:  []string{"not checked (no `lifecycled run` in command or --image): web"},
		},
		{
			name: "image given with --image", base: podBase,
			replace:  []string{`    command: ["/usr/local/bin/lifecycled"]` + "\n", "", "registry.example/app:1", "registry.example/app:2"},
			wantCode: 0,
			wantOut:  []string{"endpoints on :9090"},
		},
		{
			name: "exit-with naming an unknown tombstone", base: jobBase,
			replace:  []string{"--exit-with, main", "--exit-with, app"},
			wantCode: 1,
			want:     [][]string{{"FILE: Job/report container proxy: --exit-with app: no container of the pod writes tombstone app (tombstones written: main, proxy)"}},
		},
		{
			name: "exit-with naming a container whose tombstone has another name", base: jobBase,
			replace:  []string{"--name, main, --, /report", "--, /report"},
			wantCode: 1,
			want:     [][]string{{"--exit-with main: no container of the pod writes tombstone main (container main writes tombstone report: its --name, or its command's base name)"}},
		},
		{
			name: "exit-with naming a container that does not run lifecycled", base: jobBase,
			replace:  []string{"command: [lifecycled, --tombstone-dir, /lifecycle, --name, main, --, /report]", "command: [/report]"},
			wantCode: 1,
			want:     [][]string{{"--exit-with main: no container of the pod writes tombstone main (container main does not run lifecycled"}},
		},
		{
			name: "tombstones on different volumes", base: jobBase,
			replace:  []string{"[{name: lifecycle, mountPath: /run/tomb}]", "[{name: other, mountPath: /run/tomb}]"},
			wantCode: 1,
			want:     [][]string{{"--exit-with main: container main writes that tombstone in /lifecycle (volume lifecycle), but this container watches /run/tomb (volume other)"}},
		},
		{
			name: "watched tombstone dir not on a volume", base: jobBase,
			replace:  []string{"--tombstone-dir, /run/tomb", "--tombstone-dir, /tmp/tomb"},
			wantCode: 1,
			want:     [][]string{{"--exit-with watches --tombstone-dir /tmp/tomb, which is not on a volume"}},
		},
		{
			name: "same tombstone name twice", base: jobBase,
			replace:  []string{"--exit-with, main, --grace-period, 5s, --, /proxy", "--name, main, --grace-period, 5s, --, /proxy"},
			wantCode: 1,
			want:     [][]string{{"container proxy: writes tombstone main, as container main does, in the same directory"}},
		},
		{
			name: "tombstone dir on a read-only root filesystem", base: jobBase,
			replace: []string{"--tombstone-dir, /lifecycle, --name, main", "--tombstone-dir, /var/tomb, --name, main",
				"        volumeMounts: [{name: lifecycle, mountPath: /lifecycle}]\n", "        securityContext: {readOnlyRootFilesystem: true}\n"},
			wantCode: 1,
			want: [][]string{
				{"container main: --tombstone-dir /var/tomb is on the read-only root filesystem"},
				{"container proxy: --exit-with main: container main writes that tombstone in /var/tomb (not on a volume)"},
			},
		},
		{
			name: "native sidecar stop after the app does not fit", base: sidecarBase,
			replace:  []string{"--grace-period, 5s, --, /proxy", "--grace-period, 20s, --, /proxy"},
			wantCode: 1,
			want:     [][]string{{"container proxy: the kubelet leaves lifecycled 15s of terminationGracePeriodSeconds 30s (its SIGTERM comes at 15s: a native sidecar, it waits until shop stopped: up to 15s): the stop sequence takes up to 20s"}},
		},
		{
			name: "native sidecar next to an app lifecycled does not run", base: sidecarBase,
			replace:  []string{"command: [lifecycled, --drain-delay, 5s, --, /app]", "command: [/app]"},
			wantCode: 0,
			wantOut:  []string{"The kubelet's SIGTERM comes 0s into the pod's termination (shop, not run by lifecycled, counted as stopping at once)"},
		},
		{
			name: "plain init container under lifecycled", base: sidecarBase,
			replace:  []string{"        restartPolicy: Always\n", "", "        startupProbe:\n          httpGet: {path: /startupz, port: 9091}\n        readinessProbe:\n          httpGet: {path: /readyz, port: 9091}\n", ""},
			wantCode: 0,
			wantOut:  []string{"Deployment/shop init container proxy (terminationGracePeriodSeconds 30s)", "Budget: fits in terminationGracePeriodSeconds=30s."},
		},
		{
			name: "native sidecar without a startupProbe", base: sidecarBase,
			replace:  []string{"        startupProbe:\n          httpGet: {path: /startupz, port: 9091}\n", ""},
			wantCode: 1,
			want:     [][]string{{"container proxy: native sidecar without a startupProbe", "startupProbe httpGet path /startupz port 9091"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.base
			for i := 0; i < len(tt.replace); i += 2 {
				require.Contains(t, m, tt.replace[i], "the variant must change the base")
				m = strings.Replace(m, tt.replace[i], tt.replace[i+1], 1)
			}
			extra := []string{}
			if strings.Contains(tt.name, "--image") {
				extra = []string{"--image", "registry.example/app:2"}
			}
			code, out, errOut := explainFile(t, m, extra...)
			assert.Empty(t, errOut)
			require.Equal(t, tt.wantCode, code, "stdout:\n%s", out)
			lines := problemLines(out)
			require.Len(t, lines, len(tt.want), "problems:\n%s", strings.Join(lines, "\n"))
			for i, parts := range tt.want {
				for _, p := range parts {
					assert.Contains(t, lines[i], p)
				}
			}
			for _, o := range tt.wantOut {
				assert.Contains(t, out, o)
			}
		})
	}
}

func TestExplainFileUsageErrors(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		args     []string
		want     string
	}{
		{"not YAML", "a: [b\n", nil, "lifecycled: explain -f FILE: line 1: did not find expected ',' or ']'"},
		{"wrong shape", "kind: Pod\nspec:\n  containers: nope\n", nil, "lifecycled: explain -f FILE: line 3: cannot unmarshal !!str `nope`: not the kind of value this field takes (see"},
		{"documents run together", podBase + podBase, nil, "lifecycled: explain -f FILE: line 20: key \"apiVersion\" given twice in one mapping (first at line 1)"},
		// Issue 17: the YAML library recorded every equal pair of keys
		// (8,000 copies: 32 million errors, 4 GB, minutes).
		{"duplicate keys", strings.Replace(podBase, "  name: web\n", strings.Repeat("  name: web\n", 8000), 1), nil,
			"lifecycled: explain -f FILE: line 5: key \"name\" given twice in one mapping (first at line 4)"},
		{"a mapping too large", "kind: Pod\nmetadata:\n" + numberedKeys(1001), nil, "lifecycled: explain -f FILE: line 3: a mapping of 1001 keys: at most 1000 are read"},
		{"large mappings too many", strings.Repeat("---\nkind: Pod\nmetadata:\n"+numberedKeys(1000), 11), nil,
			"more than 10000 keys in mappings of over 64 keys: more than lifecycled reads"},
		{"$(VAR) doubling", doublingPod(40), nil,
			"lifecycled: explain -f FILE: line 6: Pod/p container a: env V15: longer than 128 KiB after $(VAR) expansion: the container could not start (exec fails with E2BIG)"},
		{"too many documents", strings.Repeat("---\n{}\n", 1001), nil, "lifecycled: explain -f FILE: line 2001: more than 1000 YAML documents"},
		{"too large", podBase + strings.Repeat("#", 1<<20), nil, "larger than 1 MiB"},
		{"not a mapping", "- a\n- b\n", nil, "lifecycled: explain -f FILE: line 1: a manifest document must be a mapping with apiVersion and kind"},
		{"no workload", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n", nil, "lifecycled: explain -f FILE: no Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob in it"},
		{"run flags do not go with -f", podBase, []string{"--drain-delay", "5s"}, "lifecycled: explain -f: flag provided but not defined: -drain-delay"},
		{"no command with -f", podBase, []string{"--", "app"}, `lifecycled: explain -f: unexpected "app"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := explainFile(t, tt.manifest, tt.args...)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, out)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
			assert.Contains(t, errOut, tt.want)
		})
	}
	var out, errOut bytes.Buffer
	assert.Equal(t, exitUsage, dispatch([]string{"explain", "-f", filepath.Join(t.TempDir(), "missing.yaml")}, &out, &errOut))
	assert.Contains(t, errOut.String(), "no such file or directory")
	assert.Equal(t, 1, strings.Count(errOut.String(), "\n"))
}

// numberedKeys is a block mapping of n keys, k0 to k(n-1), indented by 2.
func numberedKeys(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	return b.String()
}

// doublingPod is a Pod whose env doubles at each of n steps:
// V1=$(V0)$(V0), V2=$(V1)$(V1)...: 8 bytes make 8 TiB at n=40.
func doublingPod(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: i\n")
	fmt.Fprintf(&b, "    command: [lifecycled, --, app, $(V%d)]\n    env:\n    - {name: V0, value: xxxxxxxx}\n", n)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "    - {name: V%d, value: \"$(V%d)$(V%d)\"}\n", i, i-1, i-1)
	}
	return b.String()
}

func TestExplainFileStdinAndKinds(t *testing.T) {
	container := `
        containers:
        - name: c
          image: i
          command: [lifecycled, --drain-delay, 40s, --, app]`
	manifest := `apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: StatefulSet
  metadata: {name: s}
  spec:
    template:
      spec:` + container + `
- apiVersion: apps/v1
  kind: DaemonSet
  metadata: {name: d}
  spec:
    template:
      spec:` + container + `
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec:
  jobTemplate:
    spec:
      template:
        spec:` + strings.ReplaceAll(container, "\n    ", "\n      ") + `
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: r}
spec:
  template:
    spec:` + container + `
---
`
	var out, errOut bytes.Buffer
	code := explainFileMain([]string{"-f", "-"}, strings.NewReader(manifest), &out, &errOut)
	require.Equal(t, 1, code, "stderr: %s\nstdout:\n%s", errOut.String(), out.String())
	lines := problemLines(out.String())
	require.Len(t, lines, 4, strings.Join(lines, "\n"))
	for i, w := range []string{"StatefulSet/s", "DaemonSet/d", "CronJob/cj", "ReplicaSet/r"} {
		assert.True(t, strings.HasPrefix(lines[i], "stdin: "+w+" container c: the stop sequence takes up to 50s"), lines[i])
	}
}

func TestExplainHelpDocumentsFile(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, dispatch([]string{"explain", "--help"}, &out, &errOut))
	assert.Contains(t, out.String(), "lifecycled explain -f FILE [--image IMAGE]...")
	out.Reset()
	require.Equal(t, exitOK, dispatch([]string{"explain", "-f", "x", "--help"}, &out, &errOut))
	assert.Contains(t, out.String(), "lifecycled explain -f FILE [--image IMAGE]...")
}

// FuzzExplainFile: whatever the manifest, explain -f ends with 0, 1 or 2,
// prints at most one line on stderr, and only with 2.
// FuzzExplainFile: any manifest, repeated up to 64 times (copies of a
// document run together repeat its keys; of a "---" document, make many
// documents and large inputs), ends with exit 0 or 1 and nothing on
// stderr, or exit 2 and one line; a manifest over the size limit is
// refused as such, a duplicate key is named.
func FuzzExplainFile(f *testing.F) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, uint16(0))
		}
	}
	for _, m := range []string{podBase, jobBase, sidecarBase, podBase + configMap, "kind: List\nitems: [1]\n", "kind: Pod\nspec:\n  containers: [{command: [lifecycled, $(, --], env: [{name: A, value: $(A)}]}]\n",
		doublingPod(40), "kind: Pod\nmetadata:\n" + numberedKeys(70)} {
		f.Add([]byte(m), uint16(0))
	}
	f.Add([]byte(podBase), uint16(1))
	f.Add([]byte(jobBase), uint16(2))
	f.Add([]byte("---\n{}\n"), uint16(0xff00))
	f.Add([]byte("  name: web\n"), uint16(63))
	f.Add([]byte(strings.Repeat("---\n{}\n", 20)), uint16(63))
	f.Fuzz(func(t *testing.T, manifest []byte, copies uint16) {
		if len(manifest) > 64<<10 {
			return
		}
		// Mostly a few copies, which parse fast; copies from 0xff00 on
		// make an input past the limit, where nothing is parsed (one byte
		// over says as much as a megabyte).
		n := int(copies%64) + 1
		if copies >= 0xff00 && len(manifest) > 0 {
			n = yamlnode.MaxBytes/len(manifest) + 2
		}
		in := bytes.Repeat(manifest, n)
		if len(in) > yamlnode.MaxBytes+1 {
			in = in[:yamlnode.MaxBytes+1]
		}
		var out, errOut bytes.Buffer
		code := explainFileMain(append([]string{"-f", "-"}, exampleImages...), bytes.NewReader(in), &out, &errOut)
		switch code {
		case 0, 1:
			assert.Empty(t, errOut.String())
			assert.LessOrEqual(t, len(in), yamlnode.MaxBytes)
		case 2:
			assert.Equal(t, 1, strings.Count(errOut.String(), "\n"), "%q", errOut.String())
			if len(in) > yamlnode.MaxBytes {
				assert.Contains(t, errOut.String(), "larger than 1 MiB")
			}
			if strings.Contains(errOut.String(), "already defined") {
				t.Fatalf("the YAML library's duplicate check, not lifecycled's: %q", errOut.String())
			}
		default:
			t.Fatalf("exit %d", code)
		}
	})
}
