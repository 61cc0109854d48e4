//go:build kube

package kube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
)

// The cluster every test shares, and what the tests need next to it.
var (
	kc *cluster.Cluster
	// lifecycledBin is a host build of lifecycled, for `lifecycled
	// explain` next to the cluster's behaviour.
	lifecycledBin string
	repo          string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) (code int) {
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	if os.Geteuid() != 0 {
		logf("kube: the cluster tests need root (namespaces, cgroups, iptables)")
		return 1
	}
	var err error
	if repo, err = repoRoot(); err != nil {
		logf("kube: %v", err)
		return 1
	}
	cfg := cluster.Config{StateDir: os.Getenv("KUBE_STATE"), Log: logf, Nodes: 1}
	if v := os.Getenv("KUBE_NODES"); v != "" {
		// .ci/kube-test.sh: 3, for TestKubeProxyLag; the other tests'
		// pods stay on node 1 (taintExtraNodes).
		if cfg.Nodes, err = strconv.Atoi(v); err != nil || cfg.Nodes < 1 || cfg.Nodes > cluster.MaxNodes {
			logf("kube: KUBE_NODES=%s: want 1 to %d", v, cluster.MaxNodes)
			return 1
		}
	}
	if os.Getenv("KUBE_REUSE") != "" {
		// A cluster `make kube-up` brought up, left running: quicker
		// rounds while writing a test.
		return reuse(m, cfg, logf)
	}
	// A cluster left running (make kube-up) has changed the host
	// sysctls: tear it down first, so that what is read here, and checked
	// after the run, is the host's own.
	if err := cluster.Down(context.Background(), cfg); err != nil {
		logf("kube: tear down the previous cluster: %v", err)
		return 1
	}
	before, err := cluster.HostSysctls()
	if err != nil {
		logf("kube: %v", err)
		return 1
	}

	// A build and a bring-up bounded in time; the tests get their own
	// deadlines.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// Down runs on every way out this process controls: return, panic in
	// TestMain, SIGINT/SIGTERM. A test timeout or SIGKILL ends the process
	// without it; then the next Up (and .ci/kube-test.sh) cleans up from
	// the state directory.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; ok {
			logf("kube: interrupted: tearing the cluster down")
			_ = cluster.Down(context.Background(), cfg)
			os.Exit(1)
		}
	}()
	defer signal.Stop(sigs)
	defer func() {
		start := time.Now()
		if err := cluster.Down(context.Background(), cfg); err != nil {
			logf("kube: tear down: %v", err)
			code = 1
		}
		logf("kube: cluster down in %s", time.Since(start).Round(time.Millisecond))
		if left, err := cluster.Leftovers(cfg); err != nil || len(left) > 0 {
			logf("kube: cluster processes left behind: %v %v", left, err)
			code = 1
		}
		if diff, err := cluster.SysctlDiff(before); err != nil || len(diff) > 0 {
			logf("kube: host sysctls not restored: %v %v", diff, err)
			code = 1
		}
	}()

	start := time.Now()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repo, "integration", "kube", "build", "build.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		logf("kube: build the Kubernetes components: %v", err)
		return 1
	}
	cfg.BinDir = strings.TrimSpace(string(out))
	logf("kube: components ready in %s", time.Since(start).Round(time.Second))

	work, err := os.MkdirTemp("", "lifecycled-kube-images-")
	if err != nil {
		logf("kube: %v", err)
		return 1
	}
	defer os.RemoveAll(work)
	lifecycledBin = filepath.Join(work, "lifecycled-host")
	build := exec.CommandContext(ctx, "go", "build", "-o", lifecycledBin, "./cmd/lifecycled")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		logf("kube: go build lifecycled: %v\n%s", err, out)
		return 1
	}
	start = time.Now()
	if cfg.Images, err = cluster.BuildImages(ctx, repo, work, nil); err != nil {
		logf("kube: images: %v", err)
		return 1
	}
	logf("kube: images built in %s", time.Since(start).Round(time.Second))
	if kc, err = cluster.Up(ctx, cfg); err != nil {
		logf("kube: cluster up: %v", err)
		return 1
	}
	logf("kube: cluster of %d node(s) up in %s (%d MiB RSS)", len(kc.Nodes()), kc.Timings["total"].Round(time.Millisecond), kc.RSS()>>20)
	if err := taintExtraNodes(ctx); err != nil {
		logf("kube: %v", err)
		return 1
	}
	code = m.Run()
	logf("kube: cluster RSS at the end of the tests: %d MiB", kc.RSS()>>20)
	return code
}

// reuse runs the tests against the running cluster of the state
// directory, and leaves it running.
func reuse(m *testing.M, cfg cluster.Config, logf func(string, ...any)) int {
	out, err := exec.Command("bash", filepath.Join(repo, "integration", "kube", "build", "build.sh")).Output()
	if err != nil {
		logf("kube: %v", err)
		return 1
	}
	cfg.BinDir = strings.TrimSpace(string(out))
	if kc, err = cluster.Open(cfg); err != nil {
		logf("kube: KUBE_REUSE: %v", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := taintExtraNodes(ctx); err != nil {
		logf("kube: %v", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "lifecycled-kube-")
	if err != nil {
		logf("kube: %v", err)
		return 1
	}
	defer os.RemoveAll(dir)
	lifecycledBin = filepath.Join(dir, "lifecycled")
	build := exec.Command("go", "build", "-o", lifecycledBin, "./cmd/lifecycled")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		logf("kube: go build lifecycled: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}
