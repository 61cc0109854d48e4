package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Names pods use for the images BuildImages makes.
const (
	LifecycledImage = "localhost/lifecycled:dev"
	DemoImage       = "localhost/lifecycled-demo:dev"
	NoShellImage    = "localhost/lifecycled-demo:noshell"
	// AppImage holds lifecycled, the test backend (/backend), tini (/tini)
	// and busybox (integration/kube/images/Dockerfile.app).
	AppImage = "localhost/lifecycled-kube/app:test"
)

// BuildImages builds, offline, every image the cluster tests and the
// examples use, with podman (`build --isolation chroot`, FROM scratch and
// static binaries), and saves each as a docker-archive in work for Up to
// import:
//   - the pause image, from integration/kube/images/pause.c (gcc -static);
//   - the lifecycled image, from the repository's Dockerfile.prebuilt and a static
//     lifecycled built as `make build` does;
//   - the examples' demo images (examples/demo/Dockerfile{,.noshell});
//   - the test app image (integration/kube/images/Dockerfile.app).
//
// The podman images get tags unique to this call, so that a concurrent
// podman user's images are never touched, and are removed again; Up gives
// them their final names inside containerd.
func BuildImages(ctx context.Context, root, work string, logf func(string, ...any)) ([]Image, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := "kube-" + hex.EncodeToString(b)
	env := os.Environ()
	if os.Getenv("CONTAINERS_CONF") == "" {
		env = append(env, "CONTAINERS_CONF="+filepath.Join(root, "integration", "podman", "containers.conf"))
	}
	sh := func(dir string, extra []string, args ...string) error {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(append([]string{}, env...), extra...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return nil, fmt.Errorf("busybox (busybox-static) is not installed: %w", err)
	}
	const tini = "/usr/bin/tini-static"

	lc := filepath.Join(work, "lifecycled")
	app := filepath.Join(work, "app")
	pause := filepath.Join(work, "pause")
	demo := filepath.Join(work, "demo")
	for _, d := range []string{lc, app, pause, demo} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	static := []string{"CGO_ENABLED=0"}
	steps := []struct {
		dir   string
		extra []string
		args  []string
	}{
		{root, static, []string{"go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(lc, "bin", "lifecycled"), "./cmd/lifecycled"}},
		{root, static, []string{"go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(app, "backend"), "./integration/testdata/backend"}},
		{root, nil, []string{"gcc", "-static", "-O2", "-o", filepath.Join(pause, "pause"), filepath.Join(root, "integration", "kube", "images", "pause.c")}},
	}
	for _, s := range steps {
		if err := sh(s.dir, s.extra, s.args...); err != nil {
			return nil, err
		}
	}
	copies := map[string]string{
		filepath.Join(root, ".dockerignore"): filepath.Join(lc, ".dockerignore"),
		busybox:                              filepath.Join(app, "busybox"),
		tini:                                 filepath.Join(app, "tini-static"),
		filepath.Join(root, "integration", "kube", "images", "Dockerfile.app"):   filepath.Join(app, "Dockerfile"),
		filepath.Join(root, "integration", "kube", "images", "Dockerfile.pause"): filepath.Join(pause, "Dockerfile"),
	}
	if err := copyTree(filepath.Join(root, "examples", "demo"), demo); err != nil {
		return nil, err
	}
	for from, to := range copies {
		if err := copyFile(from, to); err != nil {
			return nil, err
		}
	}
	if err := copyFile(busybox, filepath.Join(demo, "busybox")); err != nil {
		return nil, err
	}

	tag := func(name string) string { return name + ":" + id }
	lcTag := tag("localhost/lifecycled")
	builds := []struct {
		tag, dir, dockerfile string
		names                []string
	}{
		{tag("localhost/lifecycled-kube/pause"), pause, "Dockerfile", []string{PauseImage}},
		// Dockerfile.prebuilt: the image's final stage from the binary
		// built above (the multi-stage Dockerfile needs a Go image pulled).
		{lcTag, lc, filepath.Join(root, "Dockerfile.prebuilt"), []string{LifecycledImage}},
		{tag("localhost/lifecycled-demo"), demo, "Dockerfile", []string{DemoImage}},
		{tag("localhost/lifecycled-demo-noshell"), demo, "Dockerfile.noshell", []string{NoShellImage}},
		{tag("localhost/lifecycled-kube/app"), app, "Dockerfile", []string{AppImage}},
	}
	var images []Image
	defer func() {
		for _, bld := range builds {
			_ = sh(work, nil, "podman", "rmi", "-f", bld.tag)
		}
	}()
	// One archive for all: containerd imports it in one go.
	archive := filepath.Join(work, "images.tar")
	save := []string{"podman", "save", "--multi-image-archive", "--format", "docker-archive", "-o", archive}
	for _, bld := range builds {
		df := bld.dockerfile
		if !filepath.IsAbs(df) {
			df = filepath.Join(bld.dir, df)
		}
		if err := sh(work, nil, "podman", "build", "--isolation", "chroot", "--build-arg", "LIFECYCLED_IMAGE="+lcTag,
			"-f", df, "-t", bld.tag, bld.dir); err != nil {
			return nil, err
		}
		save = append(save, bld.tag)
		images = append(images, Image{Archive: archive, Source: bld.tag, Names: bld.names})
		if logf != nil {
			logf("cluster: image %s built", bld.names[0])
		}
	}
	if err := sh(work, nil, save...); err != nil {
		return nil, err
	}
	return images, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	fi, err := os.Stat(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, fi.Mode().Perm())
}

// copyTree copies a directory's regular files, leaving out a developer's
// copy of busybox (the build brings its own).
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil || rel == "busybox" {
			return err
		}
		return copyFile(p, filepath.Join(to, rel))
	})
}
