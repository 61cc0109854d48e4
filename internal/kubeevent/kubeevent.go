// Package kubeevent posts a core/v1 Event about the pod lifecycled runs in:
// one POST to the API server with the standard library, authenticated by
// the pod's service-account token, the server checked against the
// service account's CA, the pod named by the downward API.
//
// Why not client-go: it would more than double the binary and bring its
// informers, caches and retries into a PID 1, for one request at the end
// of a stop that may fail without harm. Why not a package of lifecycle:
// the request is Kubernetes' wire format and credentials, which nothing
// else in lifecycle knows of, and it is tested on its own against a TLS
// server.
package kubeevent

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/internal/httpclient"
)

// ServiceAccountDir is where the kubelet mounts a pod's service account:
// token, ca.crt and namespace.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Types of Event.
const (
	Normal  = "Normal"
	Warning = "Warning"
)

// Event is what to say about the pod.
type Event struct {
	// Type is Normal or Warning.
	Type string
	// Reason is a short UpperCamelCase word (kubectl's REASON column).
	Reason string
	// Message is the text.
	Message string
}

// InCluster is where the API server, the credentials and the pod's name
// are found: Getenv reads KUBERNETES_SERVICE_HOST and _PORT (set by the
// kubelet in every container), POD_NAME, POD_NAMESPACE and POD_UID (the
// downward API); Dir is the service account's directory
// (ServiceAccountDir), whose namespace file stands in for POD_NAMESPACE.
type InCluster struct {
	Getenv func(string) string
	Dir    string
}

// maxFile bounds what is read of the token and the CA bundle.
const maxFile = 1 << 20

// Post creates ev on the pod, within ctx's deadline. Its error says what is
// missing when the pod does not give what it needs.
func (c InCluster) Post(ctx context.Context, ev Event) error {
	host, port := c.Getenv("KUBERNETES_SERVICE_HOST"), c.Getenv("KUBERNETES_SERVICE_PORT")
	name, ns, uid := c.Getenv("POD_NAME"), c.Getenv("POD_NAMESPACE"), c.Getenv("POD_UID")
	if ns == "" {
		if b, err := readFile(filepath.Join(c.Dir, "namespace")); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	}
	var missing []string
	if host == "" || port == "" {
		missing = append(missing, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (set by the kubelet: not in a pod?)")
	}
	if name == "" {
		missing = append(missing, "POD_NAME (env valueFrom fieldRef metadata.name)")
	}
	if ns == "" {
		missing = append(missing, "POD_NAMESPACE (env valueFrom fieldRef metadata.namespace)")
	}
	token, err := readFile(filepath.Join(c.Dir, "token"))
	if err != nil {
		missing = append(missing, "the service account token ("+err.Error()+"; automountServiceAccountToken false?)")
	}
	ca, err := readFile(filepath.Join(c.Dir, "ca.crt"))
	roots := x509.NewCertPool()
	if err != nil {
		missing = append(missing, "the service account CA ("+err.Error()+")")
	} else if !roots.AppendCertsFromPEM(ca) {
		missing = append(missing, "a certificate in "+filepath.Join(c.Dir, "ca.crt"))
	}
	if len(missing) > 0 {
		return errors.New("post event: needs " + strings.Join(missing, "; "))
	}

	body, err := json.Marshal(event(ev, name, ns, uid, time.Now()))
	if err != nil {
		return fmt.Errorf("post event: %w", err)
	}
	u := url.URL{Scheme: "https", Host: net.JoinHostPort(host, port), Path: "/api/v1/namespaces/" + url.PathEscape(ns) + "/events"}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post event: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	client := httpclient.NewInCluster(roots)
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post event to %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		// The API server's Status says why (RBAC: "cannot create
		// resource events").
		var st struct {
			Message string `json:"message"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
		if json.Unmarshal(b, &st) != nil || st.Message == "" {
			st.Message = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("post event to %s: %s: %s", u.Host, resp.Status, st.Message)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxFile))
}

// wireEvent is core/v1 Event as the API server takes it: the legacy
// fields kubectl describe shows (source, first and last timestamps,
// count), and the reporting ones.
type wireEvent struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		GenerateName string `json:"generateName"`
		Namespace    string `json:"namespace"`
	} `json:"metadata"`
	InvolvedObject struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Name       string `json:"name"`
		Namespace  string `json:"namespace"`
		// UID is what kubectl describe pod selects its events by.
		UID string `json:"uid,omitempty"`
	} `json:"involvedObject"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Type    string `json:"type"`
	Source  struct {
		Component string `json:"component"`
	} `json:"source"`
	FirstTimestamp     string `json:"firstTimestamp"`
	LastTimestamp      string `json:"lastTimestamp"`
	Count              int    `json:"count"`
	ReportingComponent string `json:"reportingComponent"`
	ReportingInstance  string `json:"reportingInstance"`
}

func event(ev Event, pod, ns, uid string, now time.Time) wireEvent {
	var w wireEvent
	w.APIVersion, w.Kind = "v1", "Event"
	w.Metadata.GenerateName, w.Metadata.Namespace = pod+".", ns
	w.InvolvedObject.APIVersion, w.InvolvedObject.Kind = "v1", "Pod"
	w.InvolvedObject.Name, w.InvolvedObject.Namespace, w.InvolvedObject.UID = pod, ns, uid
	w.Reason, w.Message, w.Type = ev.Reason, ev.Message, ev.Type
	w.Source.Component = "lifecycled"
	w.FirstTimestamp = now.UTC().Format(time.RFC3339)
	w.LastTimestamp = w.FirstTimestamp
	w.Count = 1
	w.ReportingComponent, w.ReportingInstance = "lifecycled", pod
	return w
}
