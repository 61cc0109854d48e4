package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// start starts a component in the cluster's namespaces, its output in
// logs/NAME.log, and records its PID. nsenter execs the binary without
// forking, so the PID is the component's.
func (c *Cluster) start(name string, args ...string) error {
	logPath := filepath.Join(c.cfg.stateDir(), "logs", name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(c.nsenter()[0], append(c.nsenter()[1:], args...)...)
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

func (c *Cluster) startContainerd(ctx context.Context) error {
	if err := c.start("containerd", "containerd", "--config", filepath.Join(c.cfg.stateDir(), "containerd.toml")); err != nil {
		return err
	}
	sock := fmt.Sprintf("/proc/%d/root/run/containerd/containerd.sock", c.state.Holder)
	return poll(ctx, func() (bool, error) {
		if err := c.alive(); err != nil {
			return false, err
		}
		_, err := os.Stat(sock)
		return err == nil, nil
	})
}

// importImages imports the image archives into containerd's k8s.io
// namespace, where the kubelet finds them, under every name they need.
func (c *Cluster) importImages(ctx context.Context) error {
	ctr := []string{"ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io"}
	imported := map[string]bool{}
	for _, img := range c.cfg.Images {
		if !imported[img.Archive] {
			if err := c.inNamespaces(ctx, append(ctr, "images", "import", img.Archive)...); err != nil {
				return err
			}
			imported[img.Archive] = true
		}
		for _, n := range img.Names {
			if n == img.Source {
				continue
			}
			if err := c.inNamespaces(ctx, append(ctr, "images", "tag", "--force", img.Source, n)...); err != nil {
				return err
			}
		}
		if !slices.Contains(img.Names, img.Source) {
			if err := c.inNamespaces(ctx, append(ctr, "images", "rm", img.Source)...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Cluster) startControlPlane(ctx context.Context) error {
	dir := c.cfg.stateDir()
	pki := filepath.Join(dir, "pki")
	if err := c.start("etcd", c.bin("etcd"),
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
	if err := c.start("kube-apiserver", c.bin("kube-apiserver"),
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
			"--cluster-cidr", PodCIDR,
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
		if err := c.start(comp.name, args...); err != nil {
			return err
		}
	}
	// Both up: their health endpoints are served only once they run.
	return poll(ctx, func() (bool, error) { return true, c.alive() })
}

func (c *Cluster) startNode(ctx context.Context) error {
	dir := c.cfg.stateDir()
	if err := makeCgroupRoot(); err != nil {
		return err
	}
	if err := c.start("kubelet", c.bin("kubelet"),
		"--config", filepath.Join(dir, "kubelet.yaml"),
		"--kubeconfig", filepath.Join(dir, "kubelet.kubeconfig"),
		"--node-ip", NodeIP,
		"--hostname-override", NodeName,
	); err != nil {
		return err
	}
	if err := c.start("kube-proxy", c.bin("kube-proxy"),
		"--config", filepath.Join(dir, "kube-proxy.yaml"),
		"--v=1",
	); err != nil {
		return err
	}
	api, err := c.apiClient()
	if err != nil {
		return err
	}
	// Ready to run pods: the node is Ready, kube-proxy has synced its
	// rules (healthz), and the default service account exists (pods are
	// refused until it does).
	return poll(ctx, func() (bool, error) {
		if err := c.alive(); err != nil {
			return false, err
		}
		var node struct {
			Status struct {
				Conditions []struct{ Type, Status string }
			}
		}
		if err := api.getJSON(ctx, "/api/v1/nodes/"+NodeName, &node); err != nil {
			return false, nil
		}
		ready := false
		for _, cond := range node.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == "True" {
				ready = true
			}
		}
		if !ready {
			return false, nil
		}
		if api.get(ctx, "/api/v1/namespaces/default/serviceaccounts/default") != nil {
			return false, nil
		}
		return c.proxyHealthy(ctx), nil
	})
}

// proxyHealthy asks kube-proxy's healthz (inside the namespace).
func (c *Cluster) proxyHealthy(ctx context.Context) bool {
	client := &http.Client{Transport: &http.Transport{DialContext: Dialer(NetNSPath(NetNS))}, Timeout: 2 * time.Second}
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
