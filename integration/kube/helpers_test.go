//go:build kube

package kube

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
	"github.com/lifecycled/lifecycled/internal/proctest"
)

// testContext is a context that ends at d or at the test's deadline.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// kubectlCmd is kubectl inside the cluster's network namespace, with the
// admin kubeconfig.
func kubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--net=" + cluster.NetNSPath(cluster.NetNS), "--", kc.Kubectl(), "--kubeconfig", kc.Kubeconfig()}, args...)
	return exec.CommandContext(ctx, "nsenter", full...)
}

// kubectlRun runs kubectl and returns stdout, stderr and the error.
func kubectlRun(ctx context.Context, stdin []byte, args ...string) (string, string, error) {
	cmd := kubectlCmd(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// kubectl runs kubectl and fails the test if it fails; it returns stdout.
func kubectl(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	out, errs, err := kubectlRun(ctx, nil, args...)
	require.NoError(t, err, "kubectl %s: %s", strings.Join(args, " "), errs)
	return out
}

// apply applies manifests (YAML or JSON) in namespace ns.
func apply(t *testing.T, ctx context.Context, ns string, manifest []byte) {
	t.Helper()
	_, errs, err := kubectlRun(ctx, manifest, "apply", "-n", ns, "-f", "-")
	require.NoError(t, err, "kubectl apply: %s\n%s", errs, manifest)
}

// applyObjects applies typed objects.
func applyObjects(t *testing.T, ctx context.Context, ns string, objs ...any) {
	t.Helper()
	var b bytes.Buffer
	for _, o := range objs {
		j, err := json.Marshal(o)
		require.NoError(t, err)
		b.Write(j)
		b.WriteByte('\n')
	}
	apply(t, ctx, ns, b.Bytes())
}

var nsUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// namespace makes a namespace for the test, waits until pods can be made
// in it (its default service account exists), and deletes it afterwards
// without waiting (the cluster's teardown ends whatever is left).
func namespace(t *testing.T) string {
	t.Helper()
	ctx := testContext(t, time.Minute)
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	name := strings.Trim(nsUnsafe.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-") + "-" + hex.EncodeToString(b)
	kubectl(t, ctx, "create", "namespace", name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if t.Failed() {
			dumpNamespace(t, ctx, name)
		}
		_, _, _ = kubectlRun(ctx, nil, "delete", "namespace", name, "--wait=false")
	})
	eventually(t, ctx, "the default service account of "+name, func() bool {
		_, _, err := kubectlRun(ctx, nil, "get", "-n", name, "serviceaccount", "default")
		return err == nil
	})
	return name
}

// dumpNamespace logs what a person debugging a failure wants to see.
func dumpNamespace(t *testing.T, ctx context.Context, ns string) {
	out, _, _ := kubectlRun(ctx, nil, "get", "-n", ns, "all,endpointslices,events", "-o", "wide")
	t.Logf("namespace %s:\n%s", ns, out)
	logs, _, _ := kubectlRun(ctx, nil, "logs", "-n", ns, "--all-containers", "--prefix", "--tail=40", "-l", "lifecycled-test")
	t.Logf("logs:\n%s", logs)
}

// eventually polls cond every 200 ms until it holds; it fails the test
// with what when ctx ends first.
func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	if proctest.Poll(ctx, 200*time.Millisecond, cond) != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// getJSON runs `kubectl get ... -o json` into v.
func getJSON(ctx context.Context, v any, args ...string) error {
	out, errs, err := kubectlRun(ctx, nil, append([]string{"get", "-o", "json"}, args...)...)
	if err != nil {
		return fmt.Errorf("kubectl get %s: %w: %s", strings.Join(args, " "), err, errs)
	}
	return json.Unmarshal([]byte(out), v)
}

func pods(t *testing.T, ctx context.Context, ns, selector string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	require.NoError(t, getJSON(ctx, &list, "pods", "-n", ns, "-l", selector))
	return list.Items
}

func pod(t *testing.T, ctx context.Context, ns, name string) corev1.Pod {
	t.Helper()
	var p corev1.Pod
	require.NoError(t, getJSON(ctx, &p, "pod", "-n", ns, name))
	return p
}

// podReady says whether the pod's Ready condition is True.
func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerStatus finds a container's (or init container's) status.
func containerStatus(p corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if s.Name == name {
			return s, true
		}
	}
	return corev1.ContainerStatus{}, false
}

// example reads a manifest of examples/ and splits it into its documents.
func example(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "examples", name))
	require.NoError(t, err)
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// exampleObject decodes the example document of the given kind strictly.
func exampleObject[T any](t *testing.T, name, kind string) *T {
	t.Helper()
	for _, d := range example(t, name) {
		var meta struct{ Kind string }
		require.NoError(t, yaml.Unmarshal(d, &meta))
		if meta.Kind != kind {
			continue
		}
		var v T
		require.NoError(t, yaml.UnmarshalStrict(d, &v), "%s", name)
		return &v
	}
	t.Fatalf("%s has no %s", name, kind)
	return nil
}

// Typed shorthands for the examples' objects.
var (
	_ = exampleObject[appsv1.Deployment]
	_ = exampleObject[batchv1.Job]
)

// hostDir makes a directory the test's pods can write through a hostPath
// volume (PodPath, as the kubelet sees it) and the test reads from the
// host (HostPath): /var/log inside the cluster's mount namespace is the
// state directory's data/log.
type hostDir struct{ PodPath, HostPath string }

func newHostDir(t *testing.T, ns string) hostDir {
	t.Helper()
	d := hostDir{
		PodPath:  "/var/log/lifecycled-test/" + ns,
		HostPath: filepath.Join(kc.StateDir(), "data", "log", "lifecycled-test", ns),
	}
	require.NoError(t, os.MkdirAll(d.HostPath, 0o777))
	require.NoError(t, os.Chmod(d.HostPath, 0o777))
	return d
}

func (d hostDir) volume(name string) corev1.Volume {
	dirType := corev1.HostPathDirectory
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: d.PodPath, Type: &dirType}}}
}

func (d hostDir) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(d.HostPath, name))
	return string(b)
}

// nodeClient is an HTTP client whose connections start inside the
// cluster's network namespace (the node); clientNSClient one whose start
// in the client namespace, outside the node.
func nsClient(nsPath string, keepAlive bool, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         cluster.Dialer(nsPath),
			DisableKeepAlives:   !keepAlive,
			MaxIdleConnsPerHost: 1,
		},
	}
}

// httpGet does one GET and returns the status code (0 on a transport
// error) and the body.
func httpGet(ctx context.Context, c *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitAnswers waits until url answers 200 n times in a row from inside
// the node: `kubectl rollout status` returns before kube-proxy has
// programmed a new Service.
func waitAnswers(t *testing.T, ctx context.Context, nsPath, url string, n int) {
	t.Helper()
	c := nsClient(nsPath, false, 2*time.Second)
	ok := 0
	eventually(t, ctx, url+" to answer", func() bool {
		code, _, _ := httpGet(ctx, c, url)
		if code == http.StatusOK {
			ok++
		} else {
			ok = 0
		}
		return ok >= n
	})
}

// serviceIP is a Service's ClusterIP.
func serviceIP(t *testing.T, ctx context.Context, ns, name string) string {
	t.Helper()
	var svc corev1.Service
	require.NoError(t, getJSON(ctx, &svc, "service", "-n", ns, name))
	require.NotEmpty(t, svc.Spec.ClusterIP)
	return svc.Spec.ClusterIP
}

func ptr[T any](v T) *T { return &v }
