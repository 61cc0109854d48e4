// Package cluster brings a real Kubernetes cluster of one node (or a few,
// Config.Nodes) up on this machine and tears it down again: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kubelet, kube-proxy (iptables)
// and containerd with runc and a CNI bridge, all built from the Go module
// proxy and Debian packages (integration/kube/build), offline.
//
// Everything runs inside namespaces the cluster makes for itself, so that
// nothing is routed off the machine and the host stays as it was:
//
//   - a network namespace (NetNS) holding only lo, an ifb device with the
//     node IP (ifb, because this kernel has no dummy device; it also
//     black-holes the default route), and the CNI bridge;
//   - a client network namespace (ClientNetNS) joined to it by a veth pair,
//     for traffic that must come from outside the node (NodePorts with
//     externalTrafficPolicy: Local);
//   - a private mount namespace (slave propagation) with tmpfs on /run and
//     /var/lib and bind mounts from the state directory for the paths the
//     kubelet and containerd hard-code (/var/lib/kubelet, /var/lib/cni,
//     /var/log), held open by a "holder" process;
//   - the pods' cgroups under CgroupRoot, removed on teardown;
//   - for each further node (Node), a network namespace joined to the
//     first's by a veth pair, a holder mount namespace, a containerd, a
//     kubelet, a kube-proxy and a cgroup root of its own.
//
// Components are started with nsenter into the holder's namespaces (not `ip
// netns exec`, which remounts /sys and hides the cgroup mounts from the
// kubelet and runc). Their PIDs, the namespaces' inodes and the host
// sysctls the kubelet overwrites are recorded in the state directory, and
// Down works from that record alone: it kills every process of the
// cluster's mount and network namespaces and cgroups by PID (never by
// name), removes the cgroups and namespaces, and restores the sysctls. Up
// runs Down first, so a run that died (a test timeout, a panic, SIGKILL)
// is cleaned up by the next one.
//
// One cluster per machine: the namespace names, cgroup root and addresses
// are fixed.
package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Fixed names and addresses of the one cluster a machine runs. The ranges
// are private and exist only inside NetNS.
const (
	NetNS       = "lifecycled-kube"
	ClientNetNS = "lifecycled-kube-client"
	NodeName    = "lifecycled-kube"
	CgroupRoot  = "/lifecycled-kube"

	NodeIP       = "10.201.0.1"
	PodCIDR      = "10.202.0.0/24"
	ServiceCIDR  = "10.203.0.0/24"
	APIServiceIP = "10.203.0.1"
	// ClientIP is the client namespace's end of the veth pair; NodeLinkIP
	// the cluster's end.
	ClientIP   = "10.204.0.2"
	NodeLinkIP = "10.204.0.1"

	APIServerURL = "https://" + NodeIP + ":6443"

	// PauseImage is the sandbox image containerd runs in every pod; it is
	// built locally (images/pause.c) since nothing can be pulled.
	PauseImage = "localhost/lifecycled-kube/pause:1"
)

// DefaultStateDir is where the cluster keeps certificates, configs, logs
// and its record of processes.
const DefaultStateDir = "/var/tmp/lifecycled-kube"

// Config says where things are.
type Config struct {
	// StateDir holds everything the cluster writes outside its tmpfs
	// mounts; DefaultStateDir when empty.
	StateDir string
	// BinDir holds etcd, kube-apiserver, kube-controller-manager,
	// kube-scheduler, kubelet, kube-proxy and kubectl (build/build.sh).
	BinDir string
	// Images are docker-archive files imported into containerd, each with
	// the names it gets there.
	Images []Image
	// Log receives progress lines; nil for none.
	Log func(format string, args ...any)
	// Nodes is how many nodes to run (NodeAt), 1 to MaxNodes; 0 means 1.
	Nodes int
}

// Image is an image archive to import and the names to give it.
type Image struct {
	// Archive is a `podman save --format docker-archive` file holding one
	// image under the name Source.
	Archive, Source string
	// Names are the names pods refer to it by.
	Names []string
}

func (c Config) stateDir() string {
	if c.StateDir == "" {
		return DefaultStateDir
	}
	return c.StateDir
}

func (c Config) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

// Cluster is a running cluster.
type Cluster struct {
	cfg   Config
	state *state
	nodes []Node
	// Timings of the bring-up, for reports.
	Timings map[string]time.Duration
}

// Paths a user (and the tests) need.

// Kubeconfig is the admin kubeconfig (system:masters).
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.cfg.stateDir(), "admin.kubeconfig") }

// Kubectl is the kubectl binary; it must run inside NetNS (see KubectlCmd).
func (c *Cluster) Kubectl() string { return filepath.Join(c.cfg.BinDir, "kubectl") }

// StateDir is the state directory.
func (c *Cluster) StateDir() string { return c.cfg.stateDir() }

// HolderPID is the PID of the process holding the cluster's mount and
// network namespaces.
func (c *Cluster) HolderPID() int { return c.state.Holder }

// PIDs returns the recorded component PIDs by name.
func (c *Cluster) PIDs() map[string]int {
	m := make(map[string]int, len(c.state.Components))
	for _, p := range c.state.Components {
		m[p.Name] = p.PID
	}
	return m
}

// NetNSPath is the network namespace file components are started in.
func NetNSPath(name string) string { return filepath.Join("/run/netns", name) }

// Up tears down whatever a previous run left (Down), then brings a new
// cluster up and waits until it can run pods: the API server is ready,
// the node is Ready, kube-proxy has synced and the default namespace has
// its service account. On error everything started so far is torn down.
func Up(ctx context.Context, cfg Config) (*Cluster, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the cluster needs root (namespaces, cgroups, iptables)")
	}
	if cfg.Nodes < 0 || cfg.Nodes > MaxNodes {
		return nil, fmt.Errorf("%d nodes: the cluster runs 1 to %d", cfg.Nodes, MaxNodes)
	}
	if err := Down(ctx, cfg); err != nil {
		return nil, fmt.Errorf("clean up the previous cluster: %w", err)
	}
	c := &Cluster{cfg: cfg, Timings: map[string]time.Duration{}}
	for i := 1; i <= max(cfg.Nodes, 1); i++ {
		c.nodes = append(c.nodes, NodeAt(i))
	}
	if err := c.up(ctx); err != nil {
		if derr := Down(context.WithoutCancel(ctx), cfg); derr != nil {
			err = fmt.Errorf("%w (and tearing down: %v)", err, derr)
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) up(ctx context.Context) error {
	dir := c.cfg.stateDir()
	start := time.Now()
	step := func(name string, f func() error) error {
		t := time.Now()
		err := f()
		c.Timings[name] = time.Since(t)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		c.cfg.logf("cluster: %s (%s)", name, time.Since(t).Round(time.Millisecond))
		return nil
	}
	for _, d := range []string{"pki", "logs", "bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		for _, d := range []string{"data/kubelet", "data/cni", "data/log", "cni/net.d"} {
			if err := os.MkdirAll(filepath.Join(n.dir(dir), d), 0o755); err != nil {
				return err
			}
		}
	}
	c.state = &state{Version: stateVersion}
	// Record first what must be restored, before anything changes it.
	sys, err := readSysctls()
	if err != nil {
		return err
	}
	c.state.Sysctls = sys
	if err := c.save(); err != nil {
		return err
	}
	if err := step("pki", func() error { return writePKI(filepath.Join(dir, "pki"), c.nodes) }); err != nil {
		return err
	}
	if err := step("configs", c.writeConfigs); err != nil {
		return err
	}
	if err := step("namespaces", func() error { return c.makeNamespaces(ctx) }); err != nil {
		return err
	}
	if err := step("containerd", func() error { return c.startContainerd(ctx) }); err != nil {
		return err
	}
	if err := step("images", func() error { return c.importImages(ctx) }); err != nil {
		return err
	}
	if err := step("control plane", func() error { return c.startControlPlane(ctx) }); err != nil {
		return err
	}
	if err := step("nodes", func() error { return c.startNodes(ctx) }); err != nil {
		return err
	}
	c.Timings["total"] = time.Since(start)
	c.cfg.logf("cluster: up in %s; kubectl: %s", time.Since(start).Round(time.Millisecond), filepath.Join(dir, "bin", "kubectl"))
	return nil
}

// Open returns the cluster a previous Up left running, from its state
// directory.
func Open(cfg Config) (*Cluster, error) {
	st, err := loadState(cfg.stateDir())
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("no cluster is recorded in %s (make kube-up)", cfg.stateDir())
	}
	return &Cluster{cfg: cfg, state: st, nodes: recordedNodes(st)}, nil
}
