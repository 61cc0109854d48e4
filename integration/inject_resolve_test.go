package integration

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/lifecycled/lifecycled/internal/registry/registrytest"
)

// resolveDeployment is stockDeployment with image and no command: its
// image's is needed. extra is added to the container (indented).
func resolveDeployment(t *testing.T, image, extra string) string {
	t.Helper()
	const stock = "        image: nginx:1.27\n        command: [\"nginx\", \"-g\", \"daemon off;\"]\n"
	require.Contains(t, stockDeployment, stock)
	return strings.Replace(stockDeployment, stock, "        image: "+image+"\n"+extra, 1)
}

// TestInjectResolve: `inject --resolve` reads the ENTRYPOINT and CMD of
// an image pushed with podman to the reference registry (docker-registry)
// on 127.0.0.1: the command is [lifecycled, …, --, ENTRYPOINT, CMD], the
// CMD left out when the manifest has args (they stay as they are); a tag
// the registry does not have is exit 1, one line naming the container and
// the image; --registry-config gives the credentials of a registry with
// basic auth, and goes only with --resolve (exit 2).
func TestInjectResolve(t *testing.T) {
	bin := lifecycledBin(t)
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Fatal("docker-registry is not installed: this test needs it (.ci/test.sh installs it: apt-get install docker-registry)")
	}
	p := podmanClient(t)
	ctx := testContext(t, 5*time.Minute)
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	reg, err := registrytest.Start(ctx, dir, storage, "")
	require.NoError(t, err)
	t.Cleanup(reg.Stop)

	// The image: FROM scratch, nothing in it but its config. Podman's
	// storage is shared with other tests: only this run's tag is removed.
	local := "localhost/lc-inject-resolve:" + p.id
	t.Cleanup(func() {
		if res := p.run(testContext(t, time.Minute), "image", "exists", local); res.code == 0 {
			if res := p.run(testContext(t, time.Minute), "rmi", local); res.code != 0 {
				t.Errorf("cleanup: %s", res)
			}
		}
	})
	build := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(build, "Containerfile"),
		[]byte("FROM scratch\nENTRYPOINT [\"/app\", \"--x\"]\nCMD [\"serve\"]\n"), 0o644))
	p.must(t, ctx, "build", "--isolation", "chroot", "--layers=false", "-f", filepath.Join(build, "Containerfile"), "-t", local, build)
	image := reg.Addr + "/web:1"
	p.must(t, ctx, "push", "--tls-verify=false", local, "docker://"+image)

	// No auth file of the machine's is read.
	home := t.TempDir()
	env := append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "REGISTRY_AUTH_FILE=") || strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") ||
			strings.HasPrefix(kv, "DOCKER_CONFIG=") || strings.HasPrefix(kv, "HOME=")
	}), "HOME="+home, "XDG_RUNTIME_DIR="+home, "DOCKER_CONFIG="+home)
	inject := func(t *testing.T, manifest string, flags ...string) (int, string, string) {
		t.Helper()
		file := filepath.Join(t.TempDir(), "manifest.yaml")
		require.NoError(t, os.WriteFile(file, []byte(manifest), 0o644))
		return runEnv(t, env, "", append([]string{bin, "inject"}, append(flags, "-f", file)...)...)
	}
	// injected is the container's command after "--", and its args.
	injected := func(t *testing.T, out string) ([]string, []string) {
		t.Helper()
		var d appsv1.Deployment
		require.NoError(t, yaml.Unmarshal([]byte(out), &d), out)
		require.Len(t, d.Spec.Template.Spec.Containers, 1)
		c := d.Spec.Template.Spec.Containers[0]
		require.NotEmpty(t, c.Command, out)
		assert.Equal(t, "/lifecycled-bin/lifecycled", c.Command[0])
		i := slices.Index(c.Command, "--")
		require.GreaterOrEqual(t, i, 0, "no -- in %q", c.Command)
		return c.Command[i+1:], c.Args
	}

	t.Run("entrypoint and cmd", func(t *testing.T) {
		code, out, stderr := inject(t, resolveDeployment(t, image, ""), "--resolve")
		require.Equal(t, 0, code, stderr)
		assert.Empty(t, stderr)
		argv, args := injected(t, out)
		assert.Equal(t, []string{"/app", "--x", "serve"}, argv)
		assert.Empty(t, args)
	})
	t.Run("args replace cmd", func(t *testing.T) {
		code, out, stderr := inject(t, resolveDeployment(t, image, "        args: [\"--port\", \"8080\"]\n"), "--resolve")
		require.Equal(t, 0, code, stderr)
		argv, args := injected(t, out)
		assert.Equal(t, []string{"/app", "--x"}, argv, "the image's CMD gives way to the manifest's args")
		assert.Equal(t, []string{"--port", "8080"}, args, "the args stay where they are")
	})
	t.Run("missing tag", func(t *testing.T) {
		missing := reg.Addr + "/web:nosuchtag"
		code, out, stderr := inject(t, resolveDeployment(t, missing, ""), "--resolve")
		assert.Equal(t, 1, code, stderr)
		assert.Empty(t, out, "nothing on stdout")
		require.Len(t, lines(stderr), 1, stderr)
		assert.Contains(t, stderr, "container web")
		assert.Contains(t, stderr, "image "+missing+": ")
		assert.Contains(t, stderr, "MANIFEST_UNKNOWN")
	})
	t.Run("registry-config without resolve", func(t *testing.T) {
		code, out, stderr := inject(t, resolveDeployment(t, image, ""), "--registry-config", filepath.Join(home, "config.json"))
		assert.Equal(t, 2, code, stderr)
		assert.Empty(t, out)
		require.Len(t, lines(stderr), 1, stderr)
		assert.Contains(t, stderr, "--registry-config goes with --resolve")
	})
	t.Run("basic auth", func(t *testing.T) {
		// The same storage behind basic auth: internal/registry's
		// testdata/htpasswd holds lcuser's bcrypt hash.
		htpasswd := filepath.Join(repoRoot(t), "internal", "registry", "testdata", "htpasswd")
		authReg, err := registrytest.Start(ctx, t.TempDir(), storage, "  htpasswd:\n    realm: lifecycled-test\n    path: "+htpasswd+"\n")
		require.NoError(t, err)
		t.Cleanup(authReg.Stop)
		image := authReg.Addr + "/web:1"

		code, out, stderr := inject(t, resolveDeployment(t, image, ""), "--resolve")
		assert.Equal(t, 1, code, stderr)
		assert.Empty(t, out)
		require.Len(t, lines(stderr), 1, stderr)
		assert.Contains(t, stderr, "401 unauthorized")

		conf := filepath.Join(t.TempDir(), "auth.json")
		cred := base64.StdEncoding.EncodeToString([]byte("lcuser:lc-secret-pw"))
		data, err := json.Marshal(map[string]any{"auths": map[string]any{authReg.Addr: map[string]string{"auth": cred}}})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(conf, data, 0o600))
		code, out, stderr = inject(t, resolveDeployment(t, image, ""), "--resolve", "--registry-config", conf)
		require.Equal(t, 0, code, stderr)
		argv, _ := injected(t, out)
		assert.Equal(t, []string{"/app", "--x", "serve"}, argv)
		assert.NotContains(t, out+stderr, "lc-secret-pw")
	})
}
