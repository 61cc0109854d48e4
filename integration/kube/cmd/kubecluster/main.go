// Command kubecluster brings the project's real single-node Kubernetes
// cluster up and down (integration/kube/cluster), for people (make kube-up,
// make kube-down, make kube-env) as the cluster tests do in their TestMain.
//
//	kubecluster [-nodes N] up  build the components (first time only) and images, start a cluster of N nodes (1)
//	kubecluster down           tear the cluster down, every node (by its record in the state directory)
//	kubecluster env            print the shell lines that point kubectl at it
//	kubecluster status         list the nodes, their processes and the cluster's memory
//
// Exit codes: 0 done, 1 failed, 2 usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/lifecycled/lifecycled/integration/kube/cluster"
)

func main() {
	state := flag.String("state", envOr("KUBE_STATE", cluster.DefaultStateDir), "state directory (certificates, configs, logs, the process record)")
	nodes := flag.Int("nodes", 1, fmt.Sprintf("nodes to bring up (1 to %d)", cluster.MaxNodes))
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: kubecluster [-state DIR] [-nodes N] up|down|env|status\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *nodes < 1 || *nodes > cluster.MaxNodes {
		fmt.Fprintf(os.Stderr, "kubecluster: -nodes %d: want 1 to %d\n", *nodes, cluster.MaxNodes)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	cfg := cluster.Config{StateDir: *state, Log: logf, Nodes: *nodes}
	var err error
	switch flag.Arg(0) {
	case "up":
		err = up(ctx, cfg)
	case "down":
		start := time.Now()
		if err = cluster.Down(ctx, cfg); err == nil {
			logf("kubecluster: down in %s", time.Since(start).Round(time.Millisecond))
		}
	case "env":
		fmt.Printf("# eval \"$(make -s kube-env)\": kubectl (run inside the cluster's network namespace) and its kubeconfig\n")
		fmt.Printf("export PATH=%s:$PATH\n", filepath.Join(*state, "bin"))
		fmt.Printf("export KUBECONFIG=%s\n", filepath.Join(*state, "admin.kubeconfig"))
	case "status":
		err = status(ctx, cfg)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubecluster: %s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func up(ctx context.Context, cfg cluster.Config) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	start := time.Now()
	bin, err := BuildComponents(ctx, root)
	if err != nil {
		return err
	}
	cfg.BinDir = bin
	cfg.Log("kubecluster: components in %s (%s)", bin, time.Since(start).Round(time.Second))
	work := filepath.Join(cfg.StateDir, "images")
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	t := time.Now()
	cfg.Images, err = cluster.BuildImages(ctx, root, work, cfg.Log)
	if err != nil {
		return err
	}
	cfg.Log("kubecluster: images built (%s)", time.Since(t).Round(time.Second))
	c, err := cluster.Up(ctx, cfg)
	if err != nil {
		return err
	}
	cfg.Log("kubecluster: cluster of %d node(s) up in %s, %d MiB RSS", len(c.Nodes()), c.Timings["total"].Round(time.Millisecond), c.RSS()>>20)
	cfg.Log("kubecluster: eval \"$(make -s kube-env)\"; kubectl get nodes    # or %s get nodes", filepath.Join(cfg.StateDir, "bin", "kubectl"))
	return nil
}

// BuildComponents runs integration/kube/build/build.sh, which builds the
// components once and caches them, and returns their directory.
func BuildComponents(ctx context.Context, root string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "integration", "kube", "build", "build.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build the Kubernetes components: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run kubecluster inside the lifecycled repository")
	}
	return filepath.Dir(gomod), nil
}

func status(ctx context.Context, cfg cluster.Config) error {
	c, err := cluster.Open(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, n := range c.Nodes() {
		ready := "Ready"
		if ok, err := c.NodeReady(ctx, n); err != nil {
			ready = fmt.Sprintf("unknown (%v)", err)
		} else if !ok {
			ready = "NotReady"
		}
		fmt.Printf("node %-18s %-11s pods %-15s netns %-18s %s\n", n.Name, n.IP, n.PodCIDR, n.NetNS, ready)
		pids := c.NodePIDs(n)
		names := make([]string, 0, len(pids))
		for name := range pids {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Printf("  %-24s pid %d\n", name, pids[name])
		}
	}
	fmt.Printf("%d processes, %d MiB RSS\n", len(c.Processes()), c.RSS()>>20)
	return nil
}
