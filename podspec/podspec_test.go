package podspec

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/lifecycled/lifecycled/settings"
)

func TestDecode(t *testing.T) {
	const manifest = `# a comment before the first document
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 45
      unknownField: is ignored, as manifests carry many
      initContainers:
      - {name: side, image: s, restartPolicy: Always}
      containers:
      - name: app
        image: a
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {port: http, path: /readyz}}
        livenessProbe: {httpGet: {port: 9090, path: /livez}}
        lifecycle: {preStop: {sleep: {seconds: 5}}}
---
---
apiVersion: v1
kind: PodList
items:
- kind: Pod
  metadata: {name: p}
  spec: {containers: [{name: c}]}
- kind: ConfigMap
  metadata: {name: cm}
  data: {config.yaml: "gracePeriod: 5s"}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
# keys a workload or a ConfigMap has, in other shapes
template: a string
data: {nested: {deep: 1}}
items: 3
`
	ws, err := Decode([]byte(manifest))
	require.NoError(t, err)
	require.Len(t, ws, 2)
	d := ws[0]
	assert.Equal(t, "Deployment/web", d.String())
	assert.Equal(t, 45*time.Second, d.Spec.TerminationGracePeriod())
	require.Len(t, d.Spec.InitContainers, 1)
	assert.Equal(t, "Always", d.Spec.InitContainers[0].RestartPolicy)
	app := d.Spec.Containers[0]
	assert.Equal(t, settings.Port{Name: "http"}, app.ReadinessProbe.HTTPGet.Port)
	assert.Equal(t, settings.Port{Number: 9090}, app.LivenessProbe.HTTPGet.Port)
	assert.Equal(t, int64(5), app.Lifecycle.PreStop.Sleep.Seconds)
	assert.Equal(t, "Pod/p", ws[1].String())
	assert.Equal(t, 30*time.Second, ws[1].Spec.TerminationGracePeriod(), "the PodSpec's default")
	assert.Equal(t, map[string]map[string]string{"cm": {"config.yaml": "gracePeriod: 5s"}}, ws[1].configMaps)
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range []struct{ name, manifest, want string }{
		{"not YAML", "kind: Pod\nspec: [", "line 2"},
		{"wrong shape", "kind: Pod\nspec:\n  containers: {a: b}\n", "line 3: cannot unmarshal"},
		{"a sequence", "- 1\n", "line 1: a manifest document must be a mapping"},
		// Issue 17: bounded before the YAML library or the expansion
		// spends minutes and gigabytes.
		{"a duplicate key", "kind: Pod\nmetadata:\n" + strings.Repeat("  name: a\n", 8000), `line 4: key "name" given twice in one mapping (first at line 3)`},
		{"a duplicate key in a list item", "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: b\n    name: c\n", `line 6: key "name" given twice in one mapping (first at line 4)`},
		{"too many documents", strings.Repeat("---\nkind: Service\n", MaxDocuments+1), "more than 1000 YAML documents"},
		{"too large", "kind: Pod\n" + strings.Repeat("#", 1<<20), "larger than 1 MiB"},
		{"$(VAR) doubling", doubling(40, "env"), "line 6: Pod/p container a: env V15: longer than 128 KiB after $(VAR) expansion"},
		{"$(VAR) doubling in args", doubling(14, "arg"), "line 6: Pod/p container a: command/args item 2: longer than 128 KiB after $(VAR) expansion"},
		{"$(VAR) in all containers", strings.Repeat(doubling(14, "env"), 100), "more than 16 MiB in all"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.manifest))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// doubling is a Pod whose env V1 to Vn doubles at each step from 8 bytes,
// Vn used in the container's args when in is "arg".
func doubling(n int, in string) string {
	var b strings.Builder
	b.WriteString("---\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    env:\n    - {name: V0, value: xxxxxxxx}\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "    - {name: V%d, value: \"$(V%d)$(V%d)\"}\n", i, i-1, i-1)
	}
	if in == "arg" {
		fmt.Fprintf(&b, "    args: [x, \"$(V%d)$(V%d)\"]\n", n, n)
	}
	return b.String()
}

func TestLifecycled(t *testing.T) {
	images := []string{"localhost/lifecycled-demo", "registry.example/wrapped:1.2"}
	tests := []struct {
		name    string
		c       Container
		ok      bool
		sub     string
		args    []string
		unknown []string
	}{
		{"command names lifecycled", Container{Command: []string{"/lifecycled", "--drain-delay", "5s"}, Args: []string{"--", "app"}},
			true, "run", []string{"--drain-delay", "5s", "--", "app"}, nil},
		{"explicit run", Container{Command: []string{"lifecycled", "run", "--", "app"}}, true, "run", []string{"--", "app"}, nil},
		{"wait subcommand", Container{Command: []string{"/bin/lifecycled"}, Args: []string{"wait", "tcp://db:5432"}},
			true, "wait", []string{"tcp://db:5432"}, nil},
		{"other command", Container{Command: []string{"/app"}, Image: "localhost/lifecycled-demo:dev"}, false, "", nil, nil},
		{"shell running lifecycled is not seen", Container{Command: []string{"sh", "-c", "exec lifecycled -- app"}}, false, "", nil, nil},
		{"image repository given without tag", Container{Image: "localhost/lifecycled-demo:dev", Args: []string{"--", "/app"}},
			true, "run", []string{"--", "/app"}, nil},
		{"image given with tag", Container{Image: "registry.example/wrapped:1.2", Args: []string{"--", "/app"}},
			true, "run", []string{"--", "/app"}, nil},
		{"other tag of an image given with tag", Container{Image: "registry.example/wrapped:1.3"}, false, "", nil, nil},
		{"image with digest", Container{Image: "localhost/lifecycled-demo@sha256:abc"}, true, "run", nil, nil},
		{"similar repository", Container{Image: "localhost/lifecycled-demo-2:dev"}, false, "", nil, nil},
		{"$(VAR) expanded", Container{
			Command: []string{"lifecycled", "--listen", ":$(PORT)", "--name", "$(MISSING)", "--pre-stop", "echo $$(PORT)", "--", "app"},
			Env:     []EnvVar{{Name: "BASE", Value: "90"}, {Name: "PORT", Value: "$(BASE)90"}},
		}, true, "run", []string{"--listen", ":9090", "--name", "$(MISSING)", "--pre-stop", "echo $(PORT)", "--", "app"}, nil},
		{"valueFrom is unknown", Container{
			Command: []string{"lifecycled", "--", "app"},
			Env:     []EnvVar{{Name: "LIFECYCLED_DRAIN_DELAY", ValueFrom: &yamlNode}},
		}, true, "run", []string{"--", "app"}, []string{"LIFECYCLED_DRAIN_DELAY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, ok := tt.c.Lifecycled(images)
			require.Equal(t, tt.ok, ok)
			if !ok {
				return
			}
			assert.Equal(t, tt.sub, inv.Subcommand)
			assert.Equal(t, tt.args, inv.Args)
			assert.Equal(t, tt.unknown, inv.Unknown)
		})
	}
}

func TestSleepCommand(t *testing.T) {
	tests := []struct {
		argv []string
		want time.Duration
		ok   bool
	}{
		{[]string{"sleep", "5"}, 5 * time.Second, true},
		{[]string{"/bin/sleep", "1.5"}, 1500 * time.Millisecond, true},
		{[]string{"sleep", "2m"}, 2 * time.Minute, true},
		{[]string{"sh", "-c", "sleep 10"}, 10 * time.Second, true},
		{[]string{"/bin/sh", "-c", "exec sleep 3;"}, 3 * time.Second, true},
		{[]string{"/lifecycled", "sleep", "5s"}, 5 * time.Second, true},
		{[]string{"sh", "-c", "sleep 5; nginx -s quit"}, 0, false},
		{[]string{"nginx", "-s", "quit"}, 0, false},
		{[]string{"sleep", "forever"}, 0, false},
	}
	for _, tt := range tests {
		d, ok := sleepCommand(tt.argv)
		assert.Equal(t, tt.ok, ok, "%q", tt.argv)
		assert.Equal(t, tt.want, d, "%q", tt.argv)
	}
}

func TestLocate(t *testing.T) {
	c := &Container{VolumeMounts: []VolumeMount{
		{Name: "data", MountPath: "/data"},
		{Name: "tomb", MountPath: "/data/tomb", SubPath: "pods/a"},
		{Name: "ro", MountPath: "/etc/x", ReadOnly: true},
	}}
	assert.Equal(t, location{volume: "data", dir: "."}, locate(c, "/data/"))
	assert.Equal(t, location{volume: "data", dir: "other"}, locate(c, "/data/other"))
	assert.Equal(t, location{volume: "tomb", dir: "pods/a/x"}, locate(c, "/data/tomb/x"))
	assert.Equal(t, location{volume: "ro", dir: ".", readOnly: true}, locate(c, "/etc/x"))
	assert.False(t, locate(c, "/database").shared(), "a prefix of the name is not a parent directory")
}

func TestStops(t *testing.T) {
	const s = time.Second
	tgp := int64(30)
	spec := &PodSpec{
		TerminationGracePeriodSeconds: &tgp,
		InitContainers: []Container{
			{Name: "mesh", RestartPolicy: "Always"},
			{Name: "setup"},
			{Name: "logs", RestartPolicy: "Always", Lifecycle: &Lifecycle{PreStop: &settings.LifecycleHandler{Exec: &settings.ExecAction{Command: []string{"sleep", "2"}}}}},
		},
		Containers: []Container{
			{Name: "app", Lifecycle: &Lifecycle{PreStop: &settings.LifecycleHandler{Sleep: &settings.SleepAction{Seconds: 5}}}},
			{Name: "other"},
		},
	}
	longest := map[string]time.Duration{"app": 12 * s, "logs": 4 * s, "mesh": 20 * s}
	got := stops(spec, func(c *Container) (time.Duration, bool) {
		d, ok := longest[c.Name]
		return d, ok
	})
	assert.Equal(t, Stop{SIGTERM: 5 * s, Grace: 25 * s, Because: []string{"the kubelet's preStop sleep 5s"}}, got["app"])
	assert.Equal(t, 30*s, got["other"].Grace)
	// logs waits for the apps (gone at 5+12 = 17s), mesh for logs (17+4).
	assert.Equal(t, 17*s, got["logs"].SIGTERM)
	assert.Equal(t, 13*s, got["logs"].Grace)
	assert.Equal(t, 21*s, got["mesh"].SIGTERM)
	assert.Equal(t, 9*s, got["mesh"].Grace)
	assert.Contains(t, got["mesh"].Because, "a native sidecar, it waits until logs stopped: up to 21s")
	assert.Contains(t, got["mesh"].Because, "other, not run by lifecycled, counted as stopping at once")
	// A plain init container is stopped as an app container, if the pod
	// goes while it runs; nothing waits for it.
	assert.Equal(t, Stop{Grace: 30 * s}, got["setup"])
}

// yamlNode stands for a valueFrom whose content does not matter.
var yamlNode = yaml.Node{Kind: yaml.MappingNode}
