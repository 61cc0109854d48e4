// Package httpclient is the one place lifecycled builds HTTP clients, with
// one policy, the kubelet's, for every request it makes into the pod:
//
//   - HTTP probes (--wait, --ready, `wait`, `probe`): as the kubelet's HTTP
//     probe (pkg/probe/http), so that a target that passes here passes there.
//   - httpGet hooks (--post-start-http, --pre-stop-http): the same, so that a
//     URL that passes as --ready also passes as a hook (a self-signed https
//     preStop used to fail where the same URL passed as --ready).
//   - --on-exit-post: the same. Its targets are the pod's other containers on
//     its loopback (Istio's /quitquitquit, Linkerd's /shutdown), which a
//     proxy from the environment cannot reach and whose certificates are
//     rarely issued for 127.0.0.1.
//   - gRPC health checks: the same transport over prior-knowledge h2c, as the
//     kubelet's grpc probe, which speaks no TLS.
//
// The policy: no proxy from the environment (HTTP_PROXY is the app's, for
// its egress: a probe checks this container's view, not a proxy's);
// certificates not verified (probes and hooks check liveness, not identity);
// keep-alives off (each request is a one-off, and an idle connection kept
// open would show up as an established connection during the drain);
// redirects followed on the same host only, at most 10, a redirect to
// another host answering for itself. Deadlines come from the request's
// context, never from the client.
//
// One request goes out of the pod, to the Kubernetes API server
// (--events): it carries the pod's service-account token, so NewInCluster
// verifies the server against the service account's CA and follows no
// redirect; no proxy and no keep-alive, as above.
package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"syscall"
)

// maxRedirects is the kubelet's (and net/http's) redirect limit.
const maxRedirects = 10

// New returns a client with the kubelet's policy (see the package comment).
// Each call returns a fresh transport: with keep-alives off nothing is
// pooled, and nothing outlives the caller's use.
func New() *http.Client { return NewControlled(nil) }

// NewControlled is New with control as the dialer's Control (see
// net.Dialer), nil for none: the probes record their own ports there.
func NewControlled(control func(network, address string, c syscall.RawConn) error) *http.Client {
	return &http.Client{Transport: transport(control), CheckRedirect: sameHostRedirects}
}

// NewGRPC returns the transport of gRPC health checks: New's policy over
// cleartext HTTP/2 with prior knowledge, since gRPC never speaks HTTP/1;
// control as in NewControlled.
func NewGRPC(control func(network, address string, c syscall.RawConn) error) *http.Transport {
	tr := transport(control)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	tr.Protocols = &protocols
	return tr
}

// NewInCluster returns the client of the API server (see the package
// comment): roots are the certificates it is verified against.
func NewInCluster(roots *x509.CertPool) *http.Client {
	tr := transport(nil)
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func transport(control func(network, address string, c syscall.RawConn) error) *http.Transport {
	return &http.Transport{
		Proxy:       nil,
		DialContext: (&net.Dialer{Control: control}).DialContext,
		// As the kubelet: the certificates of in-pod endpoints are rarely
		// valid for 127.0.0.1.
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelet semantics, see the package comment
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
}

// sameHostRedirects follows redirects on the same host (any port, as the
// kubelet compares host names only) up to maxRedirects, and stops at a
// redirect to another host, whose 3xx response is then the answer: the
// server answered, and whether the other host is up is not this request's
// business.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}
