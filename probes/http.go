package probes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/lifecycled/lifecycled/internal/httpclient"
	"github.com/lifecycled/lifecycled/internal/redact"
)

// maxHTTPBody is how much of a response body an HTTP check reads, as the
// kubelet does: enough for the server to finish writing a short answer, never
// so much that a huge or endless body holds the check.
const maxHTTPBody = 10 << 10

// checkHTTP is up when a GET of URL answers with a status from 200 to 399,
// with the kubelet's HTTP probe semantics (httpclient's policy: keep-alives
// off, certificates not verified, no proxy from the environment, redirects
// followed only on the same host, a redirect to another host is success).
func checkHTTP(ctx context.Context, t Target, opts Options) error {
	if t.URL == nil {
		return errors.New("no URL")
	}
	client := httpclient.NewControlled(opts.Control)
	defer client.CloseIdleConnections()

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
			return fmt.Errorf("status %s from %s", resp.Status, redact.URL(final.String()))
		}
		return fmt.Errorf("status %s", resp.Status)
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
		// Masked here, where it is known to be one URL: a redirect may
		// carry a signed URL's token, and a space in its query would end
		// it for redact.URLs.
		return fmt.Errorf("redirected to %s: %w", redact.URL(ue.URL), ue.Err)
	}
	return ue.Err
}
