package kubeevent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apiServer is a TLS server on 127.0.0.1 that answers the events POST as
// the API server does, and records what it got.
type apiServer struct {
	srv    *httptest.Server
	status int
	got    chan *http.Request
	bodies chan []byte
}

func newAPIServer(t *testing.T, status int) *apiServer {
	t.Helper()
	return newAPIServerWith(t, status, nil)
}

// newAPIServerWith serves with cert, or httptest's own certificate if nil
// (the same for every httptest server).
func newAPIServerWith(t *testing.T, status int, cert *tls.Certificate) *apiServer {
	t.Helper()
	a := &apiServer{status: status, got: make(chan *http.Request, 1), bodies: make(chan []byte, 1)}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.got <- r
		a.bodies <- b
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		if a.status/100 != 2 {
			_, _ = w.Write([]byte(`{"kind":"Status","message":"events is forbidden: User \"system:serviceaccount:shop:default\" cannot create resource \"events\""}`))
			return
		}
		_, _ = w.Write(b)
	}))
	if cert != nil {
		a.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	return a
}

// selfSigned is a certificate for 127.0.0.1 that no CA of the tests signed.
func selfSigned(t *testing.T) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// inCluster is what a pod gives: the service account's files in a
// temporary directory (the server's certificate as ca.crt), and the
// environment.
func (a *apiServer) inCluster(t *testing.T, env map[string]string) InCluster {
	t.Helper()
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("tok3n\n"), 0o600))
	host, port, err := net.SplitHostPort(a.srv.Listener.Addr().String())
	require.NoError(t, err)
	full := map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
		"POD_NAME": "shop-7d9f", "POD_NAMESPACE": "shop", "POD_UID": "0b9e-uid"}
	for k, v := range env {
		if v == "" {
			delete(full, k)
		} else {
			full[k] = v
		}
	}
	return InCluster{Getenv: func(k string) string { return full[k] }, Dir: dir}
}

func TestPost(t *testing.T) {
	a := newAPIServer(t, http.StatusCreated)
	c := a.inCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Post(ctx, Event{Type: Warning, Reason: "DrainCutShort", Message: "drain report: SIGKILL needed"}))

	r := <-a.got
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/api/v1/namespaces/shop/events", r.URL.Path)
	assert.Equal(t, "Bearer tok3n", r.Header.Get("Authorization"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var ev map[string]any
	require.NoError(t, json.Unmarshal(<-a.bodies, &ev))
	assert.Equal(t, "v1", ev["apiVersion"])
	assert.Equal(t, "Event", ev["kind"])
	assert.Equal(t, map[string]any{"generateName": "shop-7d9f.", "namespace": "shop"}, ev["metadata"])
	assert.Equal(t, map[string]any{"apiVersion": "v1", "kind": "Pod", "name": "shop-7d9f", "namespace": "shop", "uid": "0b9e-uid"}, ev["involvedObject"])
	assert.Equal(t, "Warning", ev["type"])
	assert.Equal(t, "DrainCutShort", ev["reason"])
	assert.Equal(t, "drain report: SIGKILL needed", ev["message"])
	assert.Equal(t, map[string]any{"component": "lifecycled"}, ev["source"])
	assert.Equal(t, "lifecycled", ev["reportingComponent"])
	assert.Equal(t, "shop-7d9f", ev["reportingInstance"])
	assert.EqualValues(t, 1, ev["count"])
	first, err := time.Parse(time.RFC3339, ev["firstTimestamp"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), first, time.Minute)
}

// The namespace file of the service account stands in for POD_NAMESPACE.
func TestPostNamespaceFromServiceAccount(t *testing.T) {
	a := newAPIServer(t, http.StatusCreated)
	c := a.inCluster(t, map[string]string{"POD_NAMESPACE": ""})
	require.NoError(t, os.WriteFile(filepath.Join(c.Dir, "namespace"), []byte("billing"), 0o644))
	require.NoError(t, c.Post(context.Background(), Event{Type: Normal, Reason: "Drained", Message: "m"}))
	assert.Equal(t, "/api/v1/namespaces/billing/events", (<-a.got).URL.Path)
}

// Each failure is one error saying what is missing or what the server
// said; none sends the token anywhere unverified.
func TestPostFails(t *testing.T) {
	t.Run("missing pod name and API server", func(t *testing.T) {
		a := newAPIServer(t, http.StatusCreated)
		c := a.inCluster(t, map[string]string{"POD_NAME": "", "KUBERNETES_SERVICE_HOST": ""})
		err := c.Post(context.Background(), Event{Type: Normal})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "POD_NAME (env valueFrom fieldRef metadata.name)")
		assert.Contains(t, err.Error(), "KUBERNETES_SERVICE_HOST")
		assert.Empty(t, a.got, "nothing sent")
	})
	t.Run("no service account token", func(t *testing.T) {
		a := newAPIServer(t, http.StatusCreated)
		c := a.inCluster(t, nil)
		require.NoError(t, os.Remove(filepath.Join(c.Dir, "token")))
		err := c.Post(context.Background(), Event{Type: Normal})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "service account token")
	})
	t.Run("a server the CA did not sign", func(t *testing.T) {
		a := newAPIServer(t, http.StatusCreated)
		other := newAPIServerWith(t, http.StatusCreated, selfSigned(t))
		c := a.inCluster(t, nil)
		_, port, _ := net.SplitHostPort(other.srv.Listener.Addr().String())
		env := c.Getenv
		c.Getenv = func(k string) string {
			if k == "KUBERNETES_SERVICE_PORT" {
				return port
			}
			return env(k)
		}
		err := c.Post(context.Background(), Event{Type: Normal})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate")
		assert.Empty(t, other.got, "no request reached the unverified server")
	})
	t.Run("RBAC refuses", func(t *testing.T) {
		a := newAPIServer(t, http.StatusForbidden)
		err := a.inCluster(t, nil).Post(context.Background(), Event{Type: Normal})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "403 Forbidden")
		assert.Contains(t, err.Error(), `cannot create resource "events"`)
	})
	t.Run("a server that does not answer: the context's deadline", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { _ = c.Close() }) // never answers the handshake
			}
		}()
		a := newAPIServer(t, http.StatusCreated)
		c := a.inCluster(t, nil)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		env := c.Getenv
		c.Getenv = func(k string) string {
			if k == "KUBERNETES_SERVICE_PORT" {
				return port
			}
			return env(k)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		require.Error(t, c.Post(ctx, Event{Type: Normal}))
		assert.Less(t, time.Since(start), 5*time.Second)
	})
}
