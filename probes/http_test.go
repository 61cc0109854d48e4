package probes

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newHTTPServer serves, on 127.0.0.1:
//
//	/status/N    answers status N
//	/redirect/N  redirects to /redirect/N-1, and /redirect/0 answers 200
//	/to?url=URL  redirects to URL
//	/big         answers 200 with an endless body
//	/hang        never answers
//	/slowbody    answers 200, sends a few bytes, then never finishes
func newHTTPServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(code)
	})
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n == 0 {
			fmt.Fprint(w, "arrived")
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/redirect/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("url"), http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	mux.HandleFunc("/slowbody", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// otherServer is a second server that counts its requests and answers 500,
// so that following a redirect to it shows up as a failure.
func otherServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestCheckHTTP(t *testing.T) {
	srv := newHTTPServer(t)
	other, otherHits := otherServer(t)
	// The same port on another host name (localhost, not 127.0.0.1).
	otherHost := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)

	tests := []struct {
		name    string
		target  string
		wantErr string // "" means up
	}{
		{"200", srv.URL + "/status/200", ""},
		{"204", srv.URL + "/status/204", ""},
		{"302 without location", srv.URL + "/status/302", ""},
		{"399", srv.URL + "/status/399", ""},
		{"400", srv.URL + "/status/400", "status 400 Bad Request"},
		{"404", srv.URL + "/status/404", "status 404 Not Found"},
		{"500", srv.URL + "/status/500", "status 500 Internal Server Error"},
		{"same-host redirect chain", srv.URL + "/redirect/5", ""},
		{"more than 10 redirects", srv.URL + "/redirect/11", "stopped after 10 redirects"},
		{"same-host redirect to a failure", srv.URL + "/to?url=/status/503", "status 503 Service Unavailable from " + srv.URL + "/status/503"},
		// The kubelet compares host names only, so another port on the same
		// host is followed...
		{"same host, other port", srv.URL + "/to?url=" + url.QueryEscape(other.URL+"/"), "status 500 Internal Server Error"},
		// ...and another host is not: the 302 itself is the answer.
		{"other-host redirect", srv.URL + "/to?url=" + url.QueryEscape(otherHost+"/"), ""},
		{"large body", srv.URL + "/big", ""},
		{"down", "http://" + closedPort(t) + "/", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := checkTarget(t, tt.target)
			if tt.wantErr == "" {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
			}
			assert.Less(t, time.Since(start), 3*time.Second)
		})
	}
	// Once for "same host, other port", never for "other-host redirect".
	assert.Equal(t, int32(1), otherHits.Load())
}

func TestCheckHTTPRequest(t *testing.T) {
	type seen struct {
		method, userAgent string
		close             bool
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{method: r.Method, userAgent: r.UserAgent(), close: r.Close}
	}))
	t.Cleanup(srv.Close)

	require.NoError(t, checkTarget(t, srv.URL+"/healthz"))
	s := <-got
	assert.Equal(t, http.MethodGet, s.method)
	assert.Equal(t, "lifecycled/test", s.userAgent)
	assert.True(t, s.close, "keep-alives must be off: the request must ask to close the connection")
}

func TestCheckHTTPS(t *testing.T) {
	// A self-signed certificate, as most in-pod endpoints have: not verified,
	// as the kubelet does not verify.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	require.True(t, strings.HasPrefix(srv.URL, "https://"))

	assert.NoError(t, checkTarget(t, srv.URL+"/ok"))
	err := checkTarget(t, srv.URL+"/other")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "status 503")
}

func TestCheckHTTPHonoursDeadline(t *testing.T) {
	srv := newHTTPServer(t)
	for _, path := range []string{"/hang", "/slowbody"} {
		t.Run(path, func(t *testing.T) {
			const deadline = 200 * time.Millisecond
			start := time.Now()
			err := Check(timeoutCtx(t, deadline), mustParse(t, srv.URL+path), testOptions)
			elapsed := time.Since(start)
			require.Error(t, err)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.GreaterOrEqual(t, elapsed, deadline)
			assert.Less(t, elapsed, 3*time.Second)
		})
	}
}
