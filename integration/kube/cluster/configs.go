package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeConfigs writes the kubeconfigs and the configuration files of the
// kubelet, kube-proxy, containerd and the CNI bridge, and the kubectl
// wrapper a person uses from the host.
func (c *Cluster) writeConfigs() error {
	dir := c.cfg.stateDir()
	pki := filepath.Join(dir, "pki")
	files := map[string]string{}
	for _, kc := range []struct{ name, cert string }{
		{"admin", "admin"}, {"controller-manager", "controller-manager"}, {"scheduler", "scheduler"},
		{"kube-proxy", "kube-proxy"},
	} {
		files[kc.name+".kubeconfig"] = kubeconfig(pki, kc.name, kc.cert)
	}
	files["resolv.conf"] = ""
	for _, n := range c.nodes {
		rel, err := filepath.Rel(dir, n.dir(dir))
		if err != nil {
			return err
		}
		for name, content := range c.nodeConfigs(n) {
			files[filepath.Join(rel, name)] = content
		}
	}
	// kubectl runs inside the cluster's network namespace, where the API
	// server listens: a person runs this wrapper from the host.
	files["bin/kubectl"] = fmt.Sprintf(`#!/bin/sh
# kubectl for the lifecycled-kube cluster (make kube-up): runs inside the
# cluster's network namespace with the admin kubeconfig.
exec nsenter --net=%s -- %s --kubeconfig %s "$@"
`, NetNSPath(NetNS), filepath.Join(c.cfg.BinDir, "kubectl"), filepath.Join(dir, "admin.kubeconfig"))
	files["env.sh"] = fmt.Sprintf(`# source me: kubectl (and the cluster's netns) for the lifecycled-kube cluster
export PATH=%s:$PATH
export KUBECONFIG=%s
`, filepath.Join(dir, "bin"), filepath.Join(dir, "admin.kubeconfig"))

	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// kubeconfig is a client-certificate kubeconfig for the API server.
func kubeconfig(pki, name, cert string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: lifecycled-kube
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: lifecycled-kube
  context:
    cluster: lifecycled-kube
    user: %s
    namespace: default
current-context: lifecycled-kube
`, APIServerURL, filepath.Join(pki, "ca.crt"), name, filepath.Join(pki, cert+".crt"), filepath.Join(pki, cert+".key"), name)
}

// nodeConfigs are node n's files, by name in its directory: its kubelet's
// kubeconfig and configuration, its kube-proxy's, its containerd's and its
// CNI bridge's.
func (c *Cluster) nodeConfigs(n Node) map[string]string {
	dir := c.cfg.stateDir()
	pki := filepath.Join(dir, "pki")
	files := map[string]string{
		"kubelet.kubeconfig": kubeconfig(pki, "kubelet", "kubelet-client"+n.suffix()),
	}
	// The VM's quirks (shared/MACHINE.md): cgroup v1 with cgroupfs, swap
	// tolerated, low eviction thresholds so a busy disk does not evict
	// test pods, image GC off (containerd 1.6 does not pin the sandbox
	// image, which could never be pulled back), no cluster DNS (an empty
	// resolv.conf; pods get a harmless MissingClusterDNS event).
	files["kubelet.yaml"] = fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[2]s/kubelet%[6]s.crt
tlsPrivateKeyFile: %[2]s/kubelet%[6]s.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %[2]s/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: %[3]s
failCgroupV1: false
failSwapOn: false
resolvConf: %[4]s/resolv.conf
podCIDR: %[5]s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
  imagefs.inodesFree: 1%%
serializeImagePulls: false
maxPods: 110
logging: {verbosity: 1}
`, n.IP, pki, n.CgroupRoot, dir, n.PodCIDR, n.suffix())

	// The global conntrack limits are read-only in a network namespace:
	// maxPerCore 0 makes kube-proxy leave them alone.
	files["kube-proxy.yaml"] = fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s/kube-proxy.kubeconfig
mode: iptables
clusterCIDR: %s
hostnameOverride: %s
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
`, dir, ClusterCIDR, n.Name)

	// restrict_oom_score_adj: this VM refuses negative oom_score_adj
	// writes with EIO, and without it runc fails every sandbox ("can't get
	// final child's PID from pipe: EOF").
	files["containerd.toml"] = fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%s"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%s/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
`, PauseImage, n.dir(dir))

	// The pods' bridge. ipMasq false: nothing leaves the namespace, so
	// there is nothing to masquerade for; hairpinMode so that a pod can
	// reach itself through a Service.
	files["cni/net.d/10-lifecycled-kube.conflist"] = fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "lifecycled-kube",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "%s"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.PodCIDR)

	return files
}
