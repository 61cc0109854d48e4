package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// start starts a component in node n's namespaces, its output in
// logs/NAME.log, and records its PID. nsenter execs the binary without
// forking, so the PID is the component's. Node i's components are named
// NAME-i.
func (c *Cluster) start(n Node, name string, args ...string) error {
	name += n.suffix()
	logPath := filepath.Join(c.cfg.stateDir(), "logs", name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	enter := c.nsenter(n)
	cmd := exec.Command(enter[0], append(enter[1:], args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own session: a Ctrl-C in the terminal of `make kube-up` must not
	// reach the cluster.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	// Reaped here while this process lives; after it exits (make
	// kube-up) the components are orphans that init reaps.
	go func() { _ = cmd.Wait() }()
	c.state.Components = append(c.state.Components, component{Name: name, PID: cmd.Process.Pid})
	return c.save()
}

// alive fails if a component has exited, pointing at its log.
func (c *Cluster) alive() error {
	for _, p := range c.state.Components {
		// Gone, or a zombie this process has not reaped yet.
		exited := syscall.Kill(p.PID, 0) != nil
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID)); err == nil {
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
				exited = true
			}
		}
		if exited {
			return fmt.Errorf("%s (pid %d) exited; see %s", p.Name, p.PID, filepath.Join(c.cfg.stateDir(), "logs", p.Name+".log"))
		}
	}
	return nil
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.cfg.BinDir, name) }

// startContainerd starts every node's containerd and waits for their
// sockets.
func (c *Cluster) startContainerd(ctx context.Context) error {
	var socks []string
	for _, n := range c.nodes {
		if err := c.start(n, "containerd", "containerd", "--config", filepath.Join(n.dir(c.cfg.stateDir()), "containerd.toml")); err != nil {
			return err
		}
		socks = append(socks, fmt.Sprintf("/proc/%d/root/run/containerd/containerd.sock", c.state.record(n).Holder))
	}
	return poll(ctx, func() (bool, error) {
		if err := c.alive(); err != nil {
			return false, err
		}
		for _, sock := range socks {
			if _, err := os.Stat(sock); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
}

// importImages imports the image archives into every node's containerd,
// all nodes at once.
func (c *Cluster) importImages(ctx context.Context) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.importNodeImages(ctx, n); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// importNodeImages imports the image archives into node n's containerd's
// k8s.io namespace, where the kubelet finds them, under every name they
// need.
func (c *Cluster) importNodeImages(ctx context.Context, n Node) error {
	ctr := []string{"ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io"}
	imported := map[string]bool{}
	for _, img := range c.cfg.Images {
		if !imported[img.Archive] {
			if err := c.inNamespaces(ctx, n, append(ctr, "images", "import", img.Archive)...); err != nil {
				return err
			}
			imported[img.Archive] = true
		}
		for _, name := range img.Names {
			if name == img.Source {
				continue
			}
			if err := c.inNamespaces(ctx, n, append(ctr, "images", "tag", "--force", img.Source, name)...); err != nil {
				return err
			}
		}
		if !slices.Contains(img.Names, img.Source) {
			if err := c.inNamespaces(ctx, n, append(ctr, "images", "rm", img.Source)...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Cluster) startControlPlane(ctx context.Context) error {
	dir := c.cfg.stateDir()
	pki := filepath.Join(dir, "pki")
	if err := c.start(c.nodes[0], "etcd", c.bin("etcd"),
		"--name", "lifecycled-kube",
		"--data-dir", "/var/lib/etcd",
		"--listen-client-urls", "http://127.0.0.1:2379",
		"--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380",
		"--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "lifecycled-kube=http://127.0.0.1:2380",
		"--listen-metrics-urls", "http://127.0.0.1:2381",
		// A throw-away cluster on tmpfs: no fsync.
		"--unsafe-no-fsync",
		"--log-level", "warn",
	); err != nil {
		return err
	}
	if err := c.start(c.nodes[0], "kube-apiserver", c.bin("kube-apiserver"),
		"--etcd-servers", "http://127.0.0.1:2379",
		"--advertise-address", NodeIP,
		"--bind-address", "0.0.0.0",
		"--secure-port", "6443",
		"--service-cluster-ip-range", ServiceCIDR,
		"--service-node-port-range", "30000-32767",
		"--client-ca-file", filepath.Join(pki, "ca.crt"),
		"--tls-cert-file", filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file", filepath.Join(pki, "apiserver.key"),
		"--kubelet-client-certificate", filepath.Join(pki, "apiserver-kubelet-client.crt"),
		"--kubelet-client-key", filepath.Join(pki, "apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority", filepath.Join(pki, "ca.crt"),
		"--kubelet-preferred-address-types", "InternalIP",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(pki, "sa.key"),
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1",
	); err != nil {
		return err
	}
	api, err := c.apiClient()
	if err != nil {
		return err
	}
	// The controller manager exits if the API server does not answer at
	// its start: start it (and the scheduler) once it is ready.
	if err := poll(ctx, func() (bool, error) {
		if err := c.alive(); err != nil {
			return false, err
		}
		return api.get(ctx, "/readyz") == nil, nil
	}); err != nil {
		return err
	}
	// The controller manager and the scheduler read the API server
	// through a kubeconfig of their own, serve their health on loopback
	// only and run alone (no leader election).
	for _, comp := range []struct {
		name, kubeconfig string
		extra            []string
	}{
		{"kube-controller-manager", "controller-manager.kubeconfig", []string{
			"--use-service-account-credentials=true",
			"--service-account-private-key-file", filepath.Join(pki, "sa.key"),
			"--root-ca-file", filepath.Join(pki, "ca.crt"),
			"--cluster-cidr", ClusterCIDR,
			"--service-cluster-ip-range", ServiceCIDR,
		}},
		{"kube-scheduler", "scheduler.kubeconfig", nil},
	} {
		kubeconfig := filepath.Join(dir, comp.kubeconfig)
		args := append([]string{c.bin(comp.name),
			"--kubeconfig", kubeconfig,
			"--authentication-kubeconfig", kubeconfig,
			"--authorization-kubeconfig", kubeconfig,
			"--bind-address", "127.0.0.1",
			"--leader-elect=false",
			"--profiling=false",
			"--v=1",
		}, comp.extra...)
		if err := c.start(c.nodes[0], comp.name, args...); err != nil {
			return err
		}
	}
	// Both up: their health endpoints are served only once they run.
	return poll(ctx, func() (bool, error) { return true, c.alive() })
}

// startNodes starts every node's kubelet and kube-proxy and waits until
// the cluster can run pods: every node is Ready, every kube-proxy has
// synced its rules (healthz), and the default service account exists
// (pods are refused until it does).
func (c *Cluster) startNodes(ctx context.Context) error {
	dir := c.cfg.stateDir()
	for _, n := range c.nodes {
		if err := makeCgroupRoot(n.CgroupRoot); err != nil {
			return err
		}
		if err := c.start(n, "kubelet", c.bin("kubelet"),
			"--config", filepath.Join(n.dir(dir), "kubelet.yaml"),
			"--kubeconfig", filepath.Join(n.dir(dir), "kubelet.kubeconfig"),
			"--node-ip", n.IP,
			"--hostname-override", n.Name,
		); err != nil {
			return err
		}
		if err := c.start(n, "kube-proxy", c.bin("kube-proxy"),
			"--config", filepath.Join(n.dir(dir), "kube-proxy.yaml"),
			"--v=1",
		); err != nil {
			return err
		}
	}
	api, err := c.apiClient()
	if err != nil {
		return err
	}
	return poll(ctx, func() (bool, error) {
		if err := c.alive(); err != nil {
			return false, err
		}
		for _, n := range c.nodes {
			if ready, err := api.nodeReady(ctx, n.Name); err != nil || !ready {
				return false, nil
			}
		}
		if api.get(ctx, "/api/v1/namespaces/default/serviceaccounts/default") != nil {
			return false, nil
		}
		for _, n := range c.nodes {
			if !c.proxyHealthy(ctx, n) {
				return false, nil
			}
		}
		return true, nil
	})
}

// NodeReady says whether node n's Ready condition is True, as the API
// server has it.
func (c *Cluster) NodeReady(ctx context.Context, n Node) (bool, error) {
	api, err := c.apiClient()
	if err != nil {
		return false, err
	}
	return api.nodeReady(ctx, n.Name)
}

// NodePIDs returns the PIDs of node n's components by name, without the
// node's suffix: containerd, kubelet, kube-proxy, and on node 1 the
// control plane's.
func (c *Cluster) NodePIDs(n Node) map[string]int {
	m := map[string]int{}
	for _, p := range c.state.Components {
		name, ok := strings.CutSuffix(p.Name, n.suffix())
		if !ok || (n.Index == 1 && extraComponent.MatchString(p.Name)) {
			continue
		}
		m[name] = p.PID
	}
	return m
}

// extraComponent matches the names of components of nodes 2 and up.
var extraComponent = regexp.MustCompile(`-[0-9]+$`)

// nodeReady says whether the node's Ready condition is True.
func (a *apiClient) nodeReady(ctx context.Context, name string) (bool, error) {
	var node struct {
		Status struct {
			Conditions []struct{ Type, Status string }
		}
	}
	if err := a.getJSON(ctx, "/api/v1/nodes/"+name, &node); err != nil {
		return false, err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == "Ready" {
			return cond.Status == "True", nil
		}
	}
	return false, nil
}

// proxyHealthy asks node n's kube-proxy's healthz (inside its namespace).
func (c *Cluster) proxyHealthy(ctx context.Context, n Node) bool {
	client := &http.Client{Transport: &http.Transport{DialContext: Dialer(NetNSPath(n.NetNS))}, Timeout: 2 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:10256/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// apiClient is an HTTPS client of the API server with the admin
// certificate, dialing inside the cluster's network namespace.
type apiClient struct{ http *http.Client }

func (c *Cluster) apiClient() (*apiClient, error) {
	pki := filepath.Join(c.cfg.stateDir(), "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &apiClient{http: &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext:     Dialer(NetNSPath(NetNS)),
			TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool},
		},
	}}, nil
}

func (a *apiClient) get(ctx context.Context, path string) error {
	return a.getJSON(ctx, path, nil)
}

func (a *apiClient) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, APIServerURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}

// poll calls cond every 100 ms until it is true, fails, or ctx ends.
func poll(ctx context.Context, cond func() (bool, error)) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting: %w", ctx.Err())
		case <-t.C:
		}
	}
}
