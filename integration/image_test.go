package integration

// Static checks of the two Dockerfiles, and the cross-compiled builds
// `make build GOARCH=...` makes. podman_test.go builds and runs the image.

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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
