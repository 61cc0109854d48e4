package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// identity is one client or serving certificate the cluster needs.
type identity struct {
	file   string // pki/FILE.{crt,key}
	cn     string
	org    []string
	server bool
	ips    []string
	dns    []string
}

// identities: client certificates named as RBAC's bootstrap policy expects
// (system:kube-controller-manager, system:kube-scheduler, system:kube-proxy,
// system:node:NAME in system:nodes), admin in system:masters, and serving
// certificates for the API server (the kubelets' in nodeIdentities).
var identities = []identity{
	{file: "apiserver", cn: "kube-apiserver", server: true,
		ips: []string{NodeIP, APIServiceIP, "127.0.0.1"},
		dns: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"}},
	{file: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", org: []string{"system:masters"}},
	{file: "admin", cn: "admin", org: []string{"system:masters"}},
	{file: "controller-manager", cn: "system:kube-controller-manager"},
	{file: "scheduler", cn: "system:kube-scheduler"},
	{file: "kube-proxy", cn: "system:kube-proxy"},
}

// nodeIdentities are node n's kubelet's client certificate
// (system:node:NAME in system:nodes, as the Node authorizer wants) and
// serving certificate (the API server dials the node IP for exec and
// logs): kubelet-client.crt and kubelet.crt for node 1, with "-i" for
// node i.
func nodeIdentities(n Node) []identity {
	return []identity{
		{file: "kubelet-client" + n.suffix(), cn: "system:node:" + n.Name, org: []string{"system:nodes"}},
		{file: "kubelet" + n.suffix(), cn: n.Name, server: true, ips: []string{n.IP, "127.0.0.1"}, dns: []string{n.Name, "localhost"}},
	}
}

// writePKI makes a CA, every identity's certificate signed by it, and the
// service-account signing key, all EC P-256 (fast to make), fresh for each
// cluster.
func writePKI(dir string, nodes []Node) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lifecycled-kube-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePair(dir, "ca", caDER, caKey); err != nil {
		return err
	}
	ids := append([]identity{}, identities...)
	for _, n := range nodes {
		ids = append(ids, nodeIdentities(n)...)
	}
	for i, id := range ids {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)),
			Subject:      pkix.Name{CommonName: id.cn, Organization: id.org},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(30 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			DNSNames:     id.dns,
		}
		if id.server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		}
		for _, ip := range id.ips {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("certificate %s: %w", id.file, err)
		}
		if err := writePair(dir, id.file, der, key); err != nil {
			return err
		}
	}
	// The service-account token signing key (ES256).
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), saKey); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

func writePair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, name+".key"), key)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	b, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b}), 0o600)
}
