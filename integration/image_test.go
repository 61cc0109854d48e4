package integration

// Static checks of the two Dockerfiles, and the cross-compiled builds
// `make build GOARCH=...` makes. podman_test.go builds and runs the image.

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The VERSION and REVISION build arguments of the image podman_test.go
// builds: its OCI labels must carry them.
const (
	testImageVersion  = "v0.0.0-test"
	testImageRevision = "0123456789abcdef0123456789abcdef01234567"
)

// dockerfileMarker starts the part Dockerfile and Dockerfile.prebuilt share.
const dockerfileMarker = "# --- the same in Dockerfile.prebuilt from here on ---\n"

// TestImageDockerfiles: `docker build .` compiles in a builder stage (static,
// -trimpath, the Go release the project pins) and its final stage is
// FROM scratch with the binary only; Dockerfile.prebuilt, which the tests
// and `make image` use offline, ends the same way, so what the tests check
// of the image holds for the one users build.
func TestImageDockerfiles(t *testing.T) {
	root := repoRoot(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		require.NoError(t, err)
		return string(b)
	}
	full, prebuilt := read("Dockerfile"), read("Dockerfile.prebuilt")
	_, fullTail, ok := strings.Cut(full, dockerfileMarker)
	require.True(t, ok, "Dockerfile has no line %q", dockerfileMarker)
	_, preTail, ok := strings.Cut(prebuilt, dockerfileMarker)
	require.True(t, ok, "Dockerfile.prebuilt has no line %q", dockerfileMarker)
	assert.Equal(t, fullTail, preTail, "the final stages of Dockerfile and Dockerfile.prebuilt differ")

	froms := regexp.MustCompile(`(?m)^FROM .*$`).FindAllString(full, -1)
	require.Len(t, froms, 2, "Dockerfile: a builder stage and a final stage")
	assert.Equal(t, "FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS builder", froms[0])
	assert.Equal(t, "FROM scratch", froms[1])
	assert.Contains(t, full, "ARG GO_IMAGE=docker.io/library/golang:"+strings.TrimPrefix(pinnedToolchain(t), "go"),
		"the builder's Go is the release the Makefile pins")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `GOARCH="$TARGETARCH"`, "-X main.version=$VERSION", "-X main.commit=$REVISION",
		"COPY --from=builder /out/lifecycled /lifecycled"} {
		assert.Contains(t, full, want)
	}
	assert.Len(t, regexp.MustCompile(`(?m)^FROM .*$`).FindAllString(prebuilt, -1), 1, "Dockerfile.prebuilt: one stage, nothing pulled")
	for _, label := range []string{"title", "description", "source", "licenses", "version", "revision"} {
		assert.Contains(t, fullTail, "org.opencontainers.image."+label+"=")
	}
}

// pinnedToolchain is the Makefile's GOTOOLCHAIN.
func pinnedToolchain(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^export GOTOOLCHAIN := (go\S+)$`).FindStringSubmatch(string(b))
	require.NotNil(t, m, "no GOTOOLCHAIN in the Makefile")
	return m[1]
}

// TestImageBuildArchitectures: `make build GOARCH=arm64` (and amd64) writes a
// static Linux binary for that machine, named after it.
func TestImageBuildArchitectures(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed (apt-get install make)")
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		goarch  string
		machine elf.Machine
	}{
		{"arm64", elf.EM_AARCH64},
		{"amd64", elf.EM_X86_64},
	} {
		t.Run(tc.goarch, func(t *testing.T) {
			cmd := exec.Command("make", "-s", "build", "GOARCH="+tc.goarch, "BINDIR="+dir, "VERSION=v9.9.9-arch")
			cmd.Dir = repoRoot(t)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "make build GOARCH=%s:\n%s", tc.goarch, out)
			path := filepath.Join(dir, "lifecycled-linux-"+tc.goarch)
			f, err := elf.Open(path)
			require.NoError(t, err)
			defer f.Close()
			assert.Equal(t, tc.machine, f.Machine)
			assert.Equal(t, elf.ELFOSABI_NONE, f.OSABI)
			assert.Equal(t, elf.ET_EXEC, f.Type, "static, not position-independent")
			for _, p := range f.Progs {
				assert.NotEqual(t, elf.PT_INTERP, p.Type, "static: no dynamic loader")
				assert.NotEqual(t, elf.PT_DYNAMIC, p.Type, "static: no shared libraries")
			}
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Contains(t, string(b), "v9.9.9-arch", "the version from the Makefile's ldflags")
		})
	}
}

// testPodmanDockerfile builds the multi-stage Dockerfile as `docker build .`
// would on a fresh clone, offline: the Go image cannot be pulled here, so
// GO_IMAGE is a stand-in made of busybox and the environment the official
// golang image sets, with this machine's Go toolchain (the pinned release)
// and module cache mounted into the build (read-only) and its build cache
// (to save minutes). Everything else, the builder stage's commands and
// the final stage, is the Dockerfile's own.
func testPodmanDockerfile(t *testing.T, p *podman) {
	ctx := testContext(t, 10*time.Minute)
	root := repoRoot(t)
	goEnv := func(name string) string {
		cmd := exec.CommandContext(ctx, "go", "env", name)
		cmd.Dir = root
		out, err := cmd.Output()
		require.NoError(t, err, "go env %s", name)
		return strings.TrimSpace(string(out))
	}
	goroot, modcache, gocache := goEnv("GOROOT"), goEnv("GOMODCACHE"), goEnv("GOCACHE")
	// The builder stage's `go mod download` runs offline against the
	// mounted cache and needs every go.mod of the module graph, which a
	// plain `go test` never fetches (github.com/davecgh/go-spew@v1.1.1's
	// was missing on a fresh machine): the same command on the host first,
	// with this process's toolchain and proxy, fills the cache it reads.
	download := exec.CommandContext(ctx, "go", "mod", "download")
	download.Dir = root
	out, err := download.CombinedOutput()
	require.NoError(t, err, "go mod download (what the builder stage reads offline): %s", out)

	goImage := "localhost/lifecycled-golang:test-" + p.id
	image := p.lifecycledImage + "-multistage"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p.run(ctx, "rmi", "-f", image, goImage)
	})
	goCtx := t.TempDir()
	bb, err := exec.LookPath("busybox")
	require.NoError(t, err)
	copyFileMode(t, bb, filepath.Join(goCtx, "busybox"))
	require.NoError(t, os.WriteFile(filepath.Join(goCtx, "Dockerfile"), []byte(`FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/mkdir", "-m", "1777", "/tmp"]
ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOPATH=/go HOME=/root GOPROXY=off
`), 0o644))
	p.must(t, ctx, "build", "--isolation", "chroot", "-t", goImage, goCtx)

	const version = "v0.0.0-multistage"
	// No --network none (chroot isolation cannot), but GOPROXY=off: the
	// build fetches nothing.
	p.must(t, ctx, "build", "--isolation", "chroot",
		"--build-arg", "GO_IMAGE="+goImage, "--build-arg", "VERSION="+version, "--build-arg", "REVISION="+testImageRevision,
		"-v", goroot+":/usr/local/go:ro", "-v", modcache+":/go/pkg/mod:ro", "-v", gocache+":/root/.cache/go-build",
		"-t", image, root) // the repository itself is the context, as with `docker build .`

	var imgs []struct {
		Size   int64
		Config struct {
			User       string
			Entrypoint []string
			Labels     map[string]string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(p.must(t, ctx, "image", "inspect", image)), &imgs))
	require.Len(t, imgs, 1)
	img := imgs[0]
	assert.Equal(t, "65532:65532", img.Config.User)
	assert.Equal(t, []string{"/lifecycled"}, img.Config.Entrypoint)
	assert.Equal(t, version, img.Config.Labels["org.opencontainers.image.version"])
	assert.Equal(t, testImageRevision, img.Config.Labels["org.opencontainers.image.revision"])
	assert.Less(t, img.Size, int64(20<<20), "the final stage holds the binary only, not the toolchain")

	res := p.runContainer(t, ctx, "--network", "none", image, "version")
	require.Equal(t, 0, res.code, "%s", res)
	assert.Contains(t, res.stdout, "lifecycled "+version+" (commit "+testImageRevision)
	res = p.runContainer(t, ctx, "--network", "none", image, "probe", "tcp://127.0.0.1:1")
	assert.Equal(t, 1, res.code, "the static binary runs in an empty image: %s", res)
}
