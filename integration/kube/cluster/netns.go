package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// makeNamespaces makes the cluster's network namespace (lo, the node-IP
// ifb device as black-hole default route), the client namespace on a veth
// pair, the other nodes' namespaces joined to it, and for every node the
// holder process that keeps its private mount namespace with its tmpfs and
// bind mounts.
func (c *Cluster) makeNamespaces(ctx context.Context) error {
	ns := NetNSPath(NetNS)
	steps := [][]string{
		{"ip", "netns", "add", NetNS},
		{"ip", "netns", "add", ClientNetNS},
		{"ip", "-n", NetNS, "link", "set", "lo", "up"},
		{"ip", "-n", NetNS, "link", "add", "node0", "type", "ifb"},
		{"ip", "-n", NetNS, "addr", "add", NodeIP + "/24", "dev", "node0"},
		{"ip", "-n", NetNS, "link", "set", "node0", "up"},
		{"ip", "-n", NetNS, "route", "add", "default", "dev", "node0"},
		{"ip", "-n", NetNS, "link", "add", "client0", "type", "veth", "peer", "name", "eth0", "netns", ClientNetNS},
		{"ip", "-n", NetNS, "addr", "add", NodeLinkIP + "/24", "dev", "client0"},
		{"ip", "-n", NetNS, "link", "set", "client0", "up"},
		{"ip", "-n", ClientNetNS, "link", "set", "lo", "up"},
		{"ip", "-n", ClientNetNS, "addr", "add", ClientIP + "/24", "dev", "eth0"},
		{"ip", "-n", ClientNetNS, "link", "set", "eth0", "up"},
		{"ip", "-n", ClientNetNS, "route", "add", "default", "via", NodeLinkIP},
		// Per-namespace settings a node needs: routing for pods, and
		// iptables on bridged traffic so that pod-to-Service-to-pod
		// replies on the same bridge are un-NATed.
		{"nsenter", "--net=" + ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
		{"nsenter", "--net=" + ns, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"},
	}
	for i, s := range steps {
		if err := run(ctx, s...); err != nil {
			return err
		}
		if i == 1 {
			// Recorded as soon as they exist, for Down.
			var err error
			if c.state.NetNS, err = inode(ns); err != nil {
				return err
			}
			if err := c.save(); err != nil {
				return err
			}
		}
	}

	for _, n := range c.nodes[1:] {
		if err := c.linkNode(ctx, n); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		if err := c.makeHolder(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// linkNode makes node n's (n > 1) network namespace and joins it to node
// 1's by a veth pair: node n's default route goes to node 1, which routes
// n's pod CIDR to it, so that pods and nodes reach each other through
// node 1 (a star), and what leaves for elsewhere ends in node 1's
// black-hole route.
func (c *Cluster) linkNode(ctx context.Context, n Node) error {
	c.state.ExtraNodes = append(c.state.ExtraNodes, nodeRecord{Index: n.Index})
	if err := run(ctx, "ip", "netns", "add", n.NetNS); err != nil {
		return err
	}
	ino, err := inode(NetNSPath(n.NetNS))
	if err != nil {
		return err
	}
	c.state.record(n).NetNS = ino
	if err := c.save(); err != nil {
		return err
	}
	ns := NetNSPath(n.NetNS)
	for _, s := range [][]string{
		{"ip", "-n", n.NetNS, "link", "set", "lo", "up"},
		{"ip", "-n", NetNS, "link", "add", n.link(), "type", "veth", "peer", "name", "eth0", "netns", n.NetNS},
		{"ip", "-n", NetNS, "addr", "add", n.linkIP() + "/24", "dev", n.link()},
		{"ip", "-n", NetNS, "link", "set", n.link(), "up"},
		{"ip", "-n", n.NetNS, "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"ip", "-n", n.NetNS, "link", "set", "eth0", "up"},
		{"ip", "-n", n.NetNS, "route", "add", "default", "via", n.linkIP()},
		{"ip", "-n", NetNS, "route", "add", n.PodCIDR, "via", n.IP},
		{"nsenter", "--net=" + ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
		{"nsenter", "--net=" + ns, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"},
	} {
		if err := run(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

// makeHolder starts the process that holds node n's private mount
// namespace (in the node's network namespace) and mounts there the paths
// the kubelet and containerd hard-code.
func (c *Cluster) makeHolder(ctx context.Context, n Node) error {
	rec := c.state.record(n)
	holder := exec.Command("nsenter", "--net="+NetNSPath(n.NetNS), "--", "unshare", "--mount", "--propagation", "slave", "--", "sleep", "infinity")
	holder.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := holder.Start(); err != nil {
		return fmt.Errorf("start the namespace holder of %s: %w", n.Name, err)
	}
	rec.Holder = holder.Process.Pid
	go func() { _ = holder.Wait() }()
	if err := c.save(); err != nil {
		return err
	}
	// unshare has made the mount namespace once the holder runs sleep.
	own, err := inode("/proc/self/ns/mnt")
	if err != nil {
		return err
	}
	if err := poll(ctx, func() (bool, error) {
		mnt, err := inode(fmt.Sprintf("/proc/%d/ns/mnt", rec.Holder))
		if err != nil {
			return false, fmt.Errorf("namespace holder: %w", err)
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", rec.Holder))
		if mnt != own && strings.HasSuffix(exe, "/sleep") {
			rec.MountNS = mnt
			return true, nil
		}
		return false, nil
	}); err != nil {
		return err
	}
	if err := c.save(); err != nil {
		return err
	}
	// The paths the kubelet and containerd hard-code: /run (containerd
	// 1.6's /run/containerd), /var/lib (containerd's root, etcd's data),
	// /var/lib/kubelet (device-plugins), /var/lib/cni (IPAM and the CNI
	// cache) and /var/log (/var/log/pods, /var/log/containers); the last
	// three are on disk in the node's directory, so that a person can
	// read the pods' logs from the host.
	script := fmt.Sprintf(`set -e
mount -t tmpfs -o mode=0755 lifecycled-kube-run /run
mount -t tmpfs -o mode=0755 lifecycled-kube-varlib /var/lib
mkdir -p /var/lib/kubelet /var/lib/cni /var/lib/containerd /var/lib/etcd
mount --bind %[1]s/data/kubelet /var/lib/kubelet
mount --bind %[1]s/data/cni /var/lib/cni
mount --bind %[1]s/data/log /var/log
`, n.dir(c.cfg.stateDir()))
	return c.inNamespaces(ctx, n, "sh", "-c", script)
}

// inNamespaces runs a command in node n's mount and network namespaces
// and waits for it.
func (c *Cluster) inNamespaces(ctx context.Context, n Node, args ...string) error {
	return run(ctx, append(c.nsenter(n), args...)...)
}

func (c *Cluster) nsenter(n Node) []string {
	return []string{"nsenter", fmt.Sprintf("--target=%d", c.state.record(n).Holder), "--mount", "--net", "--"}
}

// run runs a command and returns an error with its output if it fails.
func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// inode is the inode number of path (a namespace file).
func inode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}

// Dialer returns a DialContext function whose connections are made inside
// the network namespace at nsPath (NetNSPath(NetNS) or
// NetNSPath(ClientNetNS)), for HTTP clients running in this process.
//
// Each dial runs on a goroutine locked to its own OS thread, which enters
// the namespace and is never unlocked: Go discards the thread when the
// goroutine ends, so the switch cannot leak to other goroutines. A socket
// stays in the namespace it was made in.
func Dialer(nsPath string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return inNetNS(nsPath, func() (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		})
	}
}

// Listen opens a listener in the network namespace at nsPath, the way
// Dialer dials there: for a server of the test's own (an L7 proxy) that
// clients in the node reach on the node's 127.0.0.1.
func Listen(nsPath, network, addr string) (net.Listener, error) {
	return inNetNS(nsPath, func() (net.Listener, error) { return net.Listen(network, addr) })
}

// inNetNS runs f on a goroutine locked to its own OS thread, which enters
// the namespace at nsPath and is never unlocked: Go discards the thread
// when the goroutine ends, so the switch cannot leak to other goroutines.
func inNetNS[T any](nsPath string, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		defer func() { ch <- r }()
		ns, err := os.Open(nsPath)
		if err != nil {
			r.err = err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			r.err = fmt.Errorf("enter %s: %w", nsPath, err)
			return
		}
		r.v, r.err = f()
	}()
	r := <-ch
	return r.v, r.err
}
