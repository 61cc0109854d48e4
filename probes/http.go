package probes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// maxHTTPBody is how much of a response body an HTTP check reads, as the
// kubelet does: enough for the server to finish writing a short answer, never
// so much that a huge or endless body holds the check.
const maxHTTPBody = 10 << 10

// maxRedirects is the kubelet's (and net/http's) redirect limit.
const maxRedirects = 10

// checkHTTP is up when a GET of URL answers with a status from 200 to 399,
// with the kubelet's HTTP probe semantics: keep-alives off, certificates not
// verified, no proxy from the environment, redirects followed only on the same
// host, a redirect to another host is success.
func checkHTTP(ctx context.Context, t Target, opts Options) error {
	if t.URL == nil {
		return errors.New("no URL")
	}
	// A transport per check: with keep-alives off nothing is pooled anyway,
	// and nothing outlives the check.
	tr := &http.Transport{
		Proxy:       nil, // a probe checks this container's view, not a proxy's
		DialContext: (&net.Dialer{}).DialContext,
		// As the kubelet: probes check liveness, not identity, and the
		// certificates of in-pod endpoints are rarely valid for 127.0.0.1.
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelet semantics, see above
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: sameHostRedirects}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL.String(), nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if opts.UserAgent != "" {
		req.Header.Set("User-Agent", opts.UserAgent)
	}
	req.Header.Set("Accept", "*/*")

	resp, err := client.Do(req)
	if err != nil {
		return unwrapURLError(err, t.URL)
	}
	defer resp.Body.Close()
	// Read a little so a server that writes its body before it is done is
	// not cut off mid-write; closing the rest is safe with keep-alives off.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxHTTPBody)); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		if final := resp.Request.URL; final.String() != t.URL.String() {
			return fmt.Errorf("status %s from %s", resp.Status, final)
		}
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// sameHostRedirects follows redirects on the same host (any port, as the
// kubelet compares host names only) up to maxRedirects, and stops at a
// redirect to another host, whose 3xx response then counts as success: the
// server answered, and whether the other host is up is not this probe's
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

// unwrapURLError drops the *url.Error wrapper, whose "Get URL:" prefix would
// repeat the target, unless the failing URL is a redirect's, which is news.
func unwrapURLError(err error, target *url.URL) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if ue.URL != target.String() {
		return fmt.Errorf("redirected to %s: %w", ue.URL, ue.Err)
	}
	return ue.Err
}
