package registry

// Resolve against the reference registry server (Debian's docker-registry,
// distribution 2.8) on 127.0.0.1: images built with podman FROM scratch,
// pushed to it with podman, then read back plain, with basic auth, with a
// bearer token from a token server of the test's own, and through a
// multi-arch index. .ci/test.sh installs docker-registry and podman.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/internal/registry/registrytest"
)

// The test credentials: testdata/htpasswd holds the bcrypt hash of
// testPassword (htpasswd -nbB -C 5 lcuser lc-secret-pw).
const (
	testUser     = "lcuser"
	testPassword = "lc-secret-pw"
)

// What the test images say (testdata/Containerfile.*).
var (
	amd64Image = Image{Entrypoint: []string{"/app", "--x"}, Cmd: []string{"serve", "--port=8080"}, WorkingDir: "/srv", User: "1000:1000", Platform: "linux/amd64"}
	arm64Image = Image{Entrypoint: []string{"/app-arm64"}, Cmd: []string{"arm"}, WorkingDir: "", User: "", Platform: "linux/arm64"}
	cmdImage   = Image{Cmd: []string{"/bin/sh", "-c", "echo hi"}, Platform: "linux/amd64"}
)

// fixture is the registry storage the tests share: the images pushed once,
// then served by registries of each kind of auth.
type fixture struct {
	root    string // registry storage
	plain   string // host:port of the registry without auth
	digests map[string]string
	err     error
}

var (
	fixtureOnce sync.Once
	shared      fixture
	cleanups    []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

// images builds and pushes the test images once, and fails t if that
// cannot be done: the tests need podman and docker-registry.
func images(t *testing.T) fixture {
	t.Helper()
	fixtureOnce.Do(func() { shared = buildFixture() })
	require.NoError(t, shared.err)
	return shared
}

func buildFixture() (f fixture) {
	for _, tool := range []string{"docker-registry", "podman", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			f.err = fmt.Errorf("%s is not installed: these tests need docker-registry, podman and runc (.ci/test.sh installs them)", tool)
			return f
		}
	}
	root, err := os.MkdirTemp("", "lc-registry-")
	if err != nil {
		f.err = err
		return f
	}
	cleanups = append(cleanups, func() { _ = os.RemoveAll(root) })
	f.root = filepath.Join(root, "storage")
	f.digests = map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg, err := registrytest.Start(ctx, root, f.root, "")
	if err != nil {
		f.err = err
		return f
	}
	cleanups = append(cleanups, reg.Stop)
	f.plain = reg.Addr

	b := make([]byte, 4)
	_, _ = rand.Read(b)
	local := "localhost/lc-resolve-" + hex.EncodeToString(b)
	// The project's podman settings (shared/MACHINE.md), unless the
	// caller gave some.
	env := os.Environ()
	if os.Getenv("CONTAINERS_CONF") == "" {
		conf, err := filepath.Abs(filepath.Join("..", "..", "integration", "podman", "containers.conf"))
		if err != nil {
			f.err = err
			return f
		}
		env = append(env, "CONTAINERS_CONF="+conf)
	}
	podman := func(ctx context.Context, args ...string) error {
		cmd := exec.CommandContext(ctx, "podman", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("podman %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	dst := "docker://" + f.plain + "/"
	steps := [][]string{
		{"build", "--isolation", "chroot", "--layers=false", "--platform", "linux/amd64", "-f", "testdata/Containerfile.amd64", "-t", local + ":amd64", "testdata"},
		{"build", "--isolation", "chroot", "--layers=false", "--platform", "linux/arm64", "-f", "testdata/Containerfile.arm64", "-t", local + ":arm64", "testdata"},
		{"build", "--isolation", "chroot", "--layers=false", "--platform", "linux/amd64", "-f", "testdata/Containerfile.cmd", "-t", local + ":cmd", "testdata"},
		{"manifest", "create", local + ":list"},
		{"manifest", "add", local + ":list", "containers-storage:" + local + ":amd64"},
		{"manifest", "add", local + ":list", "containers-storage:" + local + ":arm64"},
		{"push", "--tls-verify=false", "--format", "oci", "--digestfile", filepath.Join(root, "app-oci.digest"), local + ":amd64", dst + "app:oci"},
		{"push", "--tls-verify=false", "--format", "v2s2", local + ":amd64", dst + "app:docker"},
		{"push", "--tls-verify=false", "--format", "oci", local + ":cmd", dst + "cmdonly:1"},
		{"manifest", "push", "--all", "--tls-verify=false", "--format", "oci", local + ":list", dst + "multi:oci"},
		{"manifest", "push", "--all", "--tls-verify=false", "--format", "v2s2", local + ":list", dst + "multi:docker"},
	}
	cleanups = append(cleanups, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = podman(ctx, "manifest", "rm", local+":list")
		_ = podman(ctx, "rmi", "--force", local+":amd64", local+":arm64", local+":cmd")
	})
	for _, s := range steps {
		if err := podman(ctx, s...); err != nil {
			f.err = err
			return f
		}
	}
	d, err := os.ReadFile(filepath.Join(root, "app-oci.digest"))
	if err != nil {
		f.err = err
		return f
	}
	f.digests["app:oci"] = strings.TrimSpace(string(d))
	return f
}

// startAuthRegistry serves the fixture's storage with auth.
func startAuthRegistry(t *testing.T, f fixture, auth string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg, err := registrytest.Start(ctx, t.TempDir(), f.root, auth)
	require.NoError(t, err)
	t.Cleanup(reg.Stop)
	return reg.Addr
}

// writeAuthFile writes a docker config.json with user:password for host.
func writeAuthFile(t *testing.T, path, host, user, password string) string {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	data, err := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func resolveCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// noAuth is a resolver that reads no auth file of the machine's.
func noAuth(t *testing.T, arch string) *Resolver {
	return &Resolver{Arch: arch, DockerConfig: filepath.Join(t.TempDir(), "none.json")}
}

func assertImage(t *testing.T, want, got Image) {
	t.Helper()
	assert.Equal(t, want.Entrypoint, got.Entrypoint, "entrypoint")
	assert.Equal(t, want.Cmd, got.Cmd, "cmd")
	assert.Equal(t, want.WorkingDir, got.WorkingDir, "working dir")
	assert.Equal(t, want.User, got.User, "user")
	assert.Equal(t, want.Platform, got.Platform, "platform")
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, got.Digest)
}

func TestResolvePlain(t *testing.T) {
	f := images(t)
	digest := f.digests["app:oci"]
	for _, tc := range []struct {
		ref  string
		want Image
	}{
		{f.plain + "/app:oci", amd64Image},
		{f.plain + "/app:docker", amd64Image},
		{f.plain + "/cmdonly:1", cmdImage},
		{f.plain + "/app@" + digest, amd64Image},
		{f.plain + "/app:whatever-tag@" + digest, amd64Image},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			img, err := noAuth(t, "amd64").Resolve(resolveCtx(t), tc.ref)
			require.NoError(t, err)
			assertImage(t, tc.want, img)
		})
	}
	img, err := noAuth(t, "amd64").Resolve(resolveCtx(t), f.plain+"/app:oci")
	require.NoError(t, err)
	assert.Equal(t, digest, img.Digest, "the digest podman pushed")
}

func TestResolveIndex(t *testing.T) {
	f := images(t)
	for _, tag := range []string{"oci", "docker"} {
		for _, tc := range []struct {
			arch string
			want Image
		}{
			{"amd64", amd64Image},
			{"arm64", arm64Image},
		} {
			t.Run(tag+"/"+tc.arch, func(t *testing.T) {
				img, err := noAuth(t, tc.arch).Resolve(resolveCtx(t), f.plain+"/multi:"+tag)
				require.NoError(t, err)
				assertImage(t, tc.want, img)
			})
		}
		t.Run(tag+"/default", func(t *testing.T) {
			img, err := noAuth(t, "").Resolve(resolveCtx(t), f.plain+"/multi:"+tag)
			switch runtime.GOARCH {
			case "amd64":
				require.NoError(t, err)
				assertImage(t, amd64Image, img)
			case "arm64":
				require.NoError(t, err)
				assertImage(t, arm64Image, img)
			default:
				require.Error(t, err)
			}
		})
		t.Run(tag+"/missing arch", func(t *testing.T) {
			_, err := noAuth(t, "s390x").Resolve(resolveCtx(t), f.plain+"/multi:"+tag)
			require.Error(t, err)
			assert.Equal(t, "registry "+f.plain+": manifest "+f.plain+"/multi:"+tag+
				": no linux/s390x image in the index (has: linux/amd64, linux/arm64)", err.Error())
		})
	}
}

func TestResolveErrors(t *testing.T) {
	f := images(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())
	for _, tc := range []struct {
		ref  string
		want string // a regexp the whole one-line error matches
	}{
		{f.plain + "/nothere:1", `^registry ` + regexpQuote(f.plain) + `: manifest ` + regexpQuote(f.plain) + `/nothere:1: 404 not found \(MANIFEST_UNKNOWN: manifest unknown\)$`},
		{f.plain + "/app:nosuchtag", `^registry ` + regexpQuote(f.plain) + `: manifest ` + regexpQuote(f.plain) + `/app:nosuchtag: 404 not found \(MANIFEST_UNKNOWN: manifest unknown\)$`},
		{f.plain + "/app@sha256:" + strings.Repeat("0", 64), `: 404 not found \(MANIFEST_UNKNOWN: manifest unknown\)$`},
		{closed + "/app:1", `^registry ` + regexpQuote(closed) + `: manifest ` + regexpQuote(closed) + `/app:1: Get "http://` + regexpQuote(closed) + `/v2/app/manifests/1": dial tcp .*connection refused$`},
		{"Bad/Ref", `^image reference "Bad/Ref": repository name must be lowercase$`},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := noAuth(t, "amd64").Resolve(resolveCtx(t), tc.ref)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "\n")
			assert.Regexp(t, tc.want, err.Error())
		})
	}
}

func regexpQuote(s string) string {
	return strings.NewReplacer(".", `\.`, "[", `\[`, "]", `\]`).Replace(s)
}

func TestResolveBasicAuth(t *testing.T) {
	f := images(t)
	htpasswd, err := filepath.Abs("testdata/htpasswd")
	require.NoError(t, err)
	addr := startAuthRegistry(t, f, "  htpasswd:\n    realm: lifecycled-test\n    path: "+htpasswd+"\n")
	ref := addr + "/multi:oci"

	t.Run("credentials", func(t *testing.T) {
		conf := writeAuthFile(t, filepath.Join(t.TempDir(), "config.json"), addr, testUser, testPassword)
		img, err := (&Resolver{Arch: "arm64", DockerConfig: conf}).Resolve(resolveCtx(t), ref)
		require.NoError(t, err)
		assertImage(t, arm64Image, img)
	})
	t.Run("podman auth file from REGISTRY_AUTH_FILE", func(t *testing.T) {
		t.Setenv("REGISTRY_AUTH_FILE", writeAuthFile(t, filepath.Join(t.TempDir(), "auth.json"), addr, testUser, testPassword))
		t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		img, err := (&Resolver{Arch: "amd64"}).Resolve(resolveCtx(t), ref)
		require.NoError(t, err)
		assertImage(t, amd64Image, img)
	})
	t.Run("docker config from DOCKER_CONFIG, https key", func(t *testing.T) {
		t.Setenv("REGISTRY_AUTH_FILE", "")
		t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
		dir := t.TempDir()
		t.Setenv("DOCKER_CONFIG", dir)
		writeAuthFile(t, filepath.Join(dir, "config.json"), "https://"+addr+"/", testUser, testPassword)
		img, err := (&Resolver{Arch: "amd64"}).Resolve(resolveCtx(t), ref)
		require.NoError(t, err)
		assertImage(t, amd64Image, img)
	})
	// A docker credential helper: a script on the PATH that knows addr.
	bin := t.TempDir()
	helper := fmt.Sprintf("#!/bin/sh\nread -r server\n[ \"$1\" = get ] && [ \"$server\" = %q ] && { echo '{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}'; exit 0; }\necho 'credentials not found in native keychain'\nexit 1\n", addr, addr, testUser, testPassword)
	require.NoError(t, os.WriteFile(filepath.Join(bin, "docker-credential-lctest"), []byte(helper), 0o755))
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for name, conf := range map[string]string{
		"credHelpers": `{"auths":{},"credHelpers":{"` + addr + `":"lctest"}}`,
		"credsStore":  `{"auths":{"` + addr + `":{}},"credsStore":"lctest"}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
			img, err := (&Resolver{Arch: "amd64", DockerConfig: path}).Resolve(resolveCtx(t), ref)
			require.NoError(t, err)
			assertImage(t, amd64Image, img)
		})
	}
	t.Run("helper has none", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.json")
		require.NoError(t, os.WriteFile(path, []byte(`{"credsStore":"lctest"}`), 0o600))
		_, err := (&Resolver{Arch: "amd64", DockerConfig: path}).Resolve(resolveCtx(t), "localhost:"+strings.Split(addr, ":")[1]+"/multi:oci")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no auth file has them")
	})
	t.Run("helper missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.json")
		require.NoError(t, os.WriteFile(path, []byte(`{"credsStore":"lc-not-installed"}`), 0o600))
		_, err := (&Resolver{Arch: "amd64", DockerConfig: path}).Resolve(resolveCtx(t), ref)
		require.Error(t, err)
		assert.Equal(t, "image "+ref+": credential helper docker-credential-lc-not-installed for "+addr+`: exec: "docker-credential-lc-not-installed": executable file not found in $PATH`, err.Error())
	})
	t.Run("no credentials", func(t *testing.T) {
		_, err := noAuth(t, "amd64").Resolve(resolveCtx(t), ref)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "\n")
		assert.Contains(t, err.Error(), "registry "+addr+": manifest "+ref+": 401 unauthorized: the registry asks for a user and password (basic), and no auth file has them for "+addr)
	})
	t.Run("wrong password", func(t *testing.T) {
		conf := writeAuthFile(t, filepath.Join(t.TempDir(), "config.json"), addr, testUser, "wrong")
		_, err := (&Resolver{Arch: "amd64", DockerConfig: conf}).Resolve(resolveCtx(t), ref)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "\n")
		assert.Contains(t, err.Error(), "manifest "+ref+": 401 unauthorized (UNAUTHORIZED: authentication required) with the credentials from "+conf)
	})
}

// tokenServer is a token server for docker-registry's `auth: token`: it
// issues ES256 JWTs whose x5c certificate is the registry's
// rootcertbundle. The repository "app" can be pulled anonymously; the
// others need testUser's credentials.
type tokenServer struct {
	srv      *httptest.Server
	certFile string
	mu       sync.Mutex
	requests []string // "user scope" of each token request
}

func newTokenServer(t *testing.T) *tokenServer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "lifecycled test token issuer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ts := &tokenServer{certFile: filepath.Join(t.TempDir(), "token.pem")}
	require.NoError(t, os.WriteFile(ts.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))

	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, hasCreds := r.BasicAuth()
		scope := r.URL.Query().Get("scope")
		ts.mu.Lock()
		ts.requests = append(ts.requests, user+" "+scope)
		ts.mu.Unlock()
		if hasCreds && (user != testUser || pass != testPassword) {
			http.Error(w, `{"details":"wrong user or password"}`, http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("service") != "lc-test-registry" {
			http.Error(w, "wrong service", http.StatusBadRequest)
			return
		}
		var access []map[string]any
		if typ, rest, ok := strings.Cut(scope, ":"); ok && typ == "repository" {
			name, actions, _ := strings.Cut(rest, ":")
			if hasCreds || name == "app" {
				access = append(access, map[string]any{"type": "repository", "name": name, "actions": strings.Split(actions, ",")})
			}
		}
		now := time.Now()
		claims := map[string]any{
			"iss": "lc-test-issuer", "sub": user, "aud": "lc-test-registry",
			"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Minute).Unix(),
			"jti": hex.EncodeToString(big.NewInt(now.UnixNano()).Bytes()), "access": access,
		}
		header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(der)}}
		enc := func(v any) string {
			b, _ := json.Marshal(v)
			return base64.RawURLEncoding.EncodeToString(b)
		}
		input := enc(header) + "." + enc(claims)
		sum := sha256.Sum256([]byte(input))
		rr, ss, err := ecdsa.Sign(rand.Reader, key, sum[:])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sig := make([]byte, 64)
		rr.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": input + "." + base64.RawURLEncoding.EncodeToString(sig)})
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

func TestResolveToken(t *testing.T) {
	f := images(t)
	ts := newTokenServer(t)
	addr := startAuthRegistry(t, f, fmt.Sprintf("  token:\n    realm: %s/token\n    service: lc-test-registry\n    issuer: lc-test-issuer\n    rootcertbundle: %s\n", ts.srv.URL, ts.certFile))

	t.Run("anonymous", func(t *testing.T) {
		img, err := noAuth(t, "amd64").Resolve(resolveCtx(t), addr+"/app:docker")
		require.NoError(t, err)
		assertImage(t, amd64Image, img)
	})
	t.Run("credentials", func(t *testing.T) {
		conf := writeAuthFile(t, filepath.Join(t.TempDir(), "config.json"), addr, testUser, testPassword)
		img, err := (&Resolver{Arch: "arm64", DockerConfig: conf}).Resolve(resolveCtx(t), addr+"/multi:docker")
		require.NoError(t, err)
		assertImage(t, arm64Image, img)
	})
	t.Run("anonymous denied", func(t *testing.T) {
		_, err := noAuth(t, "amd64").Resolve(resolveCtx(t), addr+"/multi:oci")
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "\n")
		assert.Contains(t, err.Error(), "registry "+addr+": manifest "+addr+"/multi:oci: 401 unauthorized (UNAUTHORIZED: authentication required) without credentials (none for "+addr+" in ")
	})
	t.Run("wrong password", func(t *testing.T) {
		conf := writeAuthFile(t, filepath.Join(t.TempDir(), "config.json"), addr, testUser, "wrong")
		_, err := (&Resolver{Arch: "amd64", DockerConfig: conf}).Resolve(resolveCtx(t), addr+"/multi:oci")
		require.Error(t, err)
		host := strings.TrimPrefix(ts.srv.URL, "http://")
		assert.Equal(t, "registry "+addr+": manifest "+addr+"/multi:oci: token from "+host+": 401 unauthorized (wrong user or password) with the credentials from "+conf, err.Error())
	})
	ts.mu.Lock()
	defer ts.mu.Unlock()
	assert.Contains(t, ts.requests, " repository:app:pull", "an anonymous token request")
	assert.Contains(t, ts.requests, testUser+" repository:multi:pull", "a token request with the credentials")
}
