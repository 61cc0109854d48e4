package registry

// What docker-registry does not serve on its own: content that does not
// match its digest, oversized manifests, blobs redirected to another host,
// arm variants, schema 1. A small registry on 127.0.0.1 (httptest) serves
// exactly the bytes each case needs.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRegistry serves manifests and blobs from maps, by path under /v2/app/.
type fakeRegistry struct {
	manifests map[string]fakeManifest // by tag or digest
	blobs     map[string][]byte       // by digest
	redirect  string                  // if set, blobs answer 307 to redirect+path
}

type fakeManifest struct {
	mediaType string
	body      []byte
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind, ref, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/app/"), "/")
	switch kind {
	case "manifests":
		m, ok := f.manifests[ref]
		if !ok {
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		_, _ = w.Write(m.body)
	case "blobs":
		if f.redirect != "" {
			http.Redirect(w, r, f.redirect+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		b, ok := f.blobs[ref]
		if !ok {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// image adds a manifest (of mediaType) for a config with entrypoint and
// returns the manifest's body and digest.
func (f *fakeRegistry) image(t *testing.T, mediaType, arch, variant string, entrypoint ...string) ([]byte, string) {
	cfg, err := json.Marshal(map[string]any{"os": "linux", "architecture": arch, "variant": variant, "config": map[string]any{"Entrypoint": entrypoint}})
	require.NoError(t, err)
	cd := digestOf(cfg)
	f.blobs[cd] = cfg
	m, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaType, "config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)}})
	require.NoError(t, err)
	md := digestOf(m)
	f.manifests[md] = fakeManifest{mediaType, m}
	return m, md
}

// index adds an index of entries (digest → os/arch[/variant]) under tag.
func (f *fakeRegistry) index(t *testing.T, tag string, entries [][2]string) {
	var ms []map[string]any
	for _, e := range entries {
		p := strings.Split(e[1], "/")
		platform := map[string]any{"os": p[0], "architecture": p[1]}
		if len(p) > 2 {
			platform["variant"] = p[2]
		}
		ms = append(ms, map[string]any{"mediaType": mediaOCIManifest, "digest": e[0], "size": 1, "platform": platform})
	}
	b, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaOCIIndex, "manifests": ms})
	require.NoError(t, err)
	f.manifests[tag] = fakeManifest{mediaOCIIndex, b}
}

func newFake(t *testing.T) (*fakeRegistry, string) {
	f := &fakeRegistry{manifests: map[string]fakeManifest{}, blobs: map[string][]byte{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func resolveFake(t *testing.T, r *Resolver, ref string) (Image, error) {
	if r.DockerConfig == "" {
		r.DockerConfig = filepath.Join(t.TempDir(), "none.json")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.Resolve(ctx, ref)
}

func TestResolveArmVariants(t *testing.T) {
	f, host := newFake(t)
	_, v6 := f.image(t, mediaOCIManifest, "arm", "v6", "/v6")
	_, v7 := f.image(t, mediaOCIManifest, "arm", "v7", "/v7")
	_, a64 := f.image(t, mediaOCIManifest, "arm64", "", "/arm64")
	_, amd := f.image(t, mediaOCIManifest, "amd64", "", "/amd64")
	_, att := f.image(t, mediaOCIManifest, "unknown", "", "/attestation")
	f.index(t, "1", [][2]string{{att, "unknown/unknown"}, {amd, "linux/amd64"}, {v6, "linux/arm/v6"}, {v7, "linux/arm/v7"}, {a64, "linux/arm64"}})
	for _, tc := range []struct{ arch, variant, want string }{
		{"arm", "", "/v7"},
		{"arm", "v6", "/v6"},
		{"arm64", "", "/arm64"}, // no variant in the index matches v8
		{"amd64", "", "/amd64"},
	} {
		img, err := resolveFake(t, &Resolver{Arch: tc.arch, Variant: tc.variant}, host+"/app:1")
		require.NoError(t, err, tc)
		assert.Equal(t, []string{tc.want}, img.Entrypoint, tc)
	}
	_, err := resolveFake(t, &Resolver{Arch: "arm", Variant: "v5"}, host+"/app:1")
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf("registry %s: manifest %s/app:1: no linux/arm (variant v5) image in the index (has: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64)", host, host), err.Error())
}

func TestResolveVerifiesDigests(t *testing.T) {
	f, host := newFake(t)
	m, md := f.image(t, mediaDockerV2, "amd64", "", "/app")
	f.manifests["good"] = fakeManifest{mediaDockerV2, m}
	img, err := resolveFake(t, &Resolver{Arch: "amd64"}, host+"/app:good")
	require.NoError(t, err)
	assert.Equal(t, md, img.Digest)
	assert.Equal(t, []string{"/app"}, img.Entrypoint)

	// A manifest asked for by digest that is not that digest's content.
	other := "sha256:" + strings.Repeat("1", 64)
	f.manifests[other] = fakeManifest{mediaDockerV2, m}
	_, err = resolveFake(t, &Resolver{Arch: "amd64"}, host+"/app@"+other)
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf("registry %s: manifest %s/app@%s: content does not match its digest (got %s)", host, host, other, md), err.Error())

	// A config blob whose bytes were changed.
	var man manifest
	require.NoError(t, json.Unmarshal(m, &man))
	f.blobs[man.Config.Digest] = []byte(strings.Replace(string(f.blobs[man.Config.Digest]), "/app", "/bad", 1))
	_, err = resolveFake(t, &Resolver{Arch: "amd64"}, host+"/app:good")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "config "+man.Config.Digest+" of "+host+"/app:good: content does not match its digest")
}

func TestResolveCaps(t *testing.T) {
	f, host := newFake(t)
	big := `{"schemaVersion":2,"mediaType":"` + mediaOCIManifest + `","annotations":{"x":"` + strings.Repeat("a", maxManifest) + `"}}`
	f.manifests["big"] = fakeManifest{mediaOCIManifest, []byte(big)}
	_, err := resolveFake(t, &Resolver{Arch: "amd64"}, host+"/app:big")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "manifest "+host+"/app:big: ")
	assert.Contains(t, err.Error(), fmt.Sprintf("more than the %d bytes allowed", maxManifest))

	// A config the manifest says is bigger than allowed is not fetched.
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"digest":"sha256:%s","size":%d}}`, mediaOCIManifest, strings.Repeat("2", 64), maxConfig+1)
	f.manifests["bigconfig"] = fakeManifest{mediaOCIManifest, []byte(m)}
	_, err = resolveFake(t, &Resolver{Arch: "amd64"}, host+"/app:bigconfig")
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("%d bytes, more than the %d bytes allowed", maxConfig+1, maxConfig))

	f.manifests["v1"] = fakeManifest{mediaDockerV1JWS, []byte(`{"schemaVersion":1,"name":"app","tag":"v1"}`)}
	_, err = resolveFake(t, &Resolver{Arch: "amd64"}, host+"/app:v1")
	require.Error(t, err)
	assert.Equal(t, "registry "+host+": manifest "+host+"/app:v1: Docker schema 1 manifests are not supported", err.Error())
}

// Blob storage answers on another host: the redirect is followed and the
// registry's credentials are not sent there.
func TestResolveBlobRedirect(t *testing.T) {
	var authToStorage atomic.Value
	authToStorage.Store("")
	store := &fakeRegistry{manifests: map[string]fakeManifest{}, blobs: map[string][]byte{}}
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authToStorage.Store(r.Header.Get("Authorization"))
		store.ServeHTTP(w, r)
	}))
	t.Cleanup(storage.Close)
	f := &fakeRegistry{manifests: map[string]fakeManifest{}, blobs: store.blobs, redirect: strings.Replace(storage.URL, "127.0.0.1", "localhost", 1)}
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	m, _ := f.image(t, mediaOCIManifest, "amd64", "", "/redirected")
	f.manifests["1"] = fakeManifest{mediaOCIManifest, m}

	conf := writeAuthFile(t, filepath.Join(t.TempDir(), "config.json"), host, testUser, testPassword)
	img, err := resolveFake(t, &Resolver{Arch: "amd64", DockerConfig: conf}, host+"/app:1")
	require.NoError(t, err)
	assert.Equal(t, []string{"/redirected"}, img.Entrypoint)
	assert.Empty(t, authToStorage.Load(), "credentials sent to the blob storage")
}

// A registry that never answers: the context's deadline ends Resolve.
func TestResolveDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&Resolver{DockerConfig: filepath.Join(t.TempDir(), "none.json")}).Resolve(ctx, host+"/app:1")
	require.Error(t, err)
	assert.Less(t, time.Since(start), 20*time.Second)
	assert.Equal(t, fmt.Sprintf(`registry %s: manifest %s/app:1: Get "http://%s/v2/app/manifests/1": context deadline exceeded`, host, host, host), err.Error())
}

// Plain http only for the loopback by default, https elsewhere, and
// Insecure decides when given.
func TestResolveScheme(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost": true, "localhost:5001": true, "[::1]:5000": true,
		"ghcr.io": false, "10.0.0.1:5000": false, "127.0.0.2:5000": false, "localhost.example": false,
	} {
		assert.Equal(t, want, defaultInsecure(host), host)
	}

	// A TLS registry on 127.0.0.1, trusted through the client given.
	f := &fakeRegistry{manifests: map[string]fakeManifest{}, blobs: map[string][]byte{}}
	m, _ := f.image(t, mediaOCIManifest, "amd64", "", "/tls")
	f.manifests["1"] = fakeManifest{mediaOCIManifest, m}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	never := func(string) bool { return false }
	img, err := resolveFake(t, &Resolver{Client: srv.Client(), Insecure: never}, host+"/app:1")
	require.NoError(t, err)
	assert.Equal(t, []string{"/tls"}, img.Entrypoint)

	// The same with the default policy: plain http to the loopback,
	// which a TLS server refuses.
	_, err = resolveFake(t, &Resolver{Client: srv.Client()}, host+"/app:1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "400 bad request")

	// And https to a plain http server when Insecure says no.
	plain := httptest.NewServer(f)
	t.Cleanup(plain.Close)
	phost := strings.TrimPrefix(plain.URL, "http://")
	_, err = resolveFake(t, &Resolver{Insecure: never}, phost+"/app:1")
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf(`registry %s: manifest %s/app:1: Get "https://%s/v2/app/manifests/1": http: server gave HTTP response to HTTPS client`, phost, phost, phost), err.Error())
}
