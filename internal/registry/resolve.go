// Package registry reads an image's ENTRYPOINT and CMD from its registry
// with the OCI distribution API, for `lifecycled inject --resolve`: the
// manifest (an index or manifest list is narrowed to linux/<arch>), then
// the config blob, whose config.Entrypoint and config.Cmd are the
// original command.
//
// Its HTTP policy is not internal/httpclient's: that one is the kubelet's,
// for requests into the pod, and skips certificate checks; a registry is
// reached across the network with credentials, so certificates are
// verified, the environment's proxy is used (as docker and podman do), and
// redirects may go to another host (blob storage), where net/http drops the
// Authorization header.
package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Caps on what a registry can make Resolve read or do.
const (
	maxManifest   = 4 << 20 // distribution's own limit for a manifest
	maxConfig     = 4 << 20
	maxToken      = 1 << 20
	maxErrorBody  = 64 << 10
	maxRedirects  = 10
	maxIndexDepth = 3 // an index of indexes, at most this deep
)

// Media types of manifests and indexes.
const (
	mediaOCIIndex     = "application/vnd.oci.image.index.v1+json"
	mediaOCIManifest  = "application/vnd.oci.image.manifest.v1+json"
	mediaDockerList   = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaDockerV2     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerV1     = "application/vnd.docker.distribution.manifest.v1+json"
	mediaDockerV1JWS  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	acceptedManifests = mediaOCIIndex + ", " + mediaOCIManifest + ", " + mediaDockerList + ", " + mediaDockerV2
)

// Image is what Resolve reads from an image's config.
type Image struct {
	// Entrypoint and Cmd are the image's ENTRYPOINT and CMD, nil when unset.
	Entrypoint, Cmd []string
	// WorkingDir and User are the image's WORKDIR and USER, empty when unset.
	WorkingDir, User string
	// Digest is the digest of the platform's manifest the config came from.
	Digest string
	// Platform is the platform of that manifest as os/arch[/variant].
	Platform string
}

// Resolver reads images' configs from their registries. Its zero value is
// ready to use; it can be used concurrently.
type Resolver struct {
	// Client makes the requests. Nil: a client with the package's policy
	// (see the package comment).
	Client *http.Client
	// OS and Arch choose the manifest of an index: linux and
	// runtime.GOARCH when empty. Variant too (v7 for arm, v8 for arm64
	// when empty); an entry with no variant matches any.
	OS, Arch, Variant string
	// DockerConfig is the auth file to read credentials from (docker's
	// config.json or podman's auth.json format). Empty: podman's and
	// docker's usual places (see authFiles).
	DockerConfig string
	// Insecure tells which registry hosts (host or host:port as in the
	// reference) are reached over plain http. Nil: localhost, 127.0.0.1
	// and ::1 only, as docker's default.
	Insecure func(host string) bool
}

// Resolve reads the config of the image ref for the resolver's platform.
// The deadline is ctx's. Errors are one line naming the image and what
// failed.
func (r *Resolver) Resolve(ctx context.Context, ref string) (Image, error) {
	parsed, err := ParseReference(ref)
	if err != nil {
		return Image{}, err
	}
	files := authFiles(r.DockerConfig)
	creds, err := lookupCredentials(ctx, files, parsed)
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", parsed, err)
	}
	client := r.Client
	if client == nil {
		// A client of its own for this call, whose idle connections go
		// when it ends: nothing outlives Resolve.
		client = newClient()
		defer client.CloseIdleConnections()
	}
	s := &session{r: r, ref: parsed, creds: creds, authFiles: files, client: client}
	s.base = s.scheme() + "://" + parsed.apiHost() + "/v2/" + parsed.Repository
	img, err := s.resolve(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("registry %s: %w", parsed.Registry, err)
	}
	return img, nil
}

// newClient returns a client with the package's policy (see the package
// comment).
func newClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: tr, CheckRedirect: func(_ *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}}
}

func (r *Resolver) platform() (osName, arch, variant string) {
	osName, arch, variant = r.OS, r.Arch, r.Variant
	if osName == "" {
		osName = "linux"
	}
	if arch == "" {
		arch = runtime.GOARCH
	}
	if variant == "" {
		switch arch {
		case "arm":
			variant = "v7"
		case "arm64":
			variant = "v8"
		}
	}
	return osName, arch, variant
}

// session is one Resolve: one image, one token.
type session struct {
	r         *Resolver
	ref       Reference
	creds     *credentials
	authFiles []string
	client    *http.Client
	base      string // scheme://host/v2/<repository>
	auth      string // the Authorization header once a challenge is met
}

func (s *session) scheme() string {
	insecure := s.r.Insecure
	if insecure == nil {
		insecure = defaultInsecure
	}
	if insecure(s.ref.Registry) {
		return "http"
	}
	return "https"
}

// defaultInsecure is docker's default: only the loopback is reached over
// plain http.
func defaultInsecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	} `json:"platform"`
}

// manifest holds the fields of an index and of a manifest that Resolve
// reads.
type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
	Config        *descriptor  `json:"config"`
}

// imageConfig is the part of an image config Resolve reads.
type imageConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
	Config       struct {
		Entrypoint []string `json:"Entrypoint"`
		Cmd        []string `json:"Cmd"`
		WorkingDir string   `json:"WorkingDir"`
		User       string   `json:"User"`
	} `json:"config"`
}

func (s *session) resolve(ctx context.Context) (Image, error) {
	what, digest := s.ref.String(), s.ref.Digest
	ref := s.ref.manifestRef()
	for depth := 0; ; depth++ {
		body, mediaType, err := s.get(ctx, "/manifests/"+ref, acceptedManifests, maxManifest, digest)
		if err != nil {
			return Image{}, fmt.Errorf("manifest %s: %w", what, err)
		}
		var m manifest
		if err := json.Unmarshal(body, &m); err != nil {
			return Image{}, fmt.Errorf("manifest %s: not JSON: %v", what, err)
		}
		if m.MediaType != "" && (mediaType == "" || mediaType == "application/json" || mediaType == "text/plain") {
			mediaType = m.MediaType
		}
		if digest == "" {
			digest = digestOf(body)
		}
		switch {
		case mediaType == mediaDockerV1 || mediaType == mediaDockerV1JWS || m.SchemaVersion == 1:
			return Image{}, fmt.Errorf("manifest %s: Docker schema 1 manifests are not supported", what)
		case mediaType == mediaOCIIndex || mediaType == mediaDockerList || (mediaType != mediaOCIManifest && mediaType != mediaDockerV2 && m.Manifests != nil):
			if depth >= maxIndexDepth {
				return Image{}, fmt.Errorf("manifest %s: indexes nested deeper than %d", what, maxIndexDepth)
			}
			d, err := s.pick(m.Manifests)
			if err != nil {
				return Image{}, fmt.Errorf("manifest %s: %w", what, err)
			}
			ref, digest = d.Digest, d.Digest
			what = s.ref.Registry + "/" + s.ref.Repository + "@" + d.Digest
		case m.Config != nil:
			return s.config(ctx, what, digest, *m.Config)
		default:
			return Image{}, fmt.Errorf("manifest %s: media type %q is neither an image manifest nor an index", what, mediaType)
		}
	}
}

// pick chooses the index entry for the resolver's platform: an exact
// variant match first, else an entry without a variant.
func (s *session) pick(entries []descriptor) (descriptor, error) {
	osName, arch, variant := s.r.platform()
	var loose *descriptor
	var has []string
	for i, d := range entries {
		p := d.Platform
		if p == nil || p.OS == "unknown" { // attestations, not images
			continue
		}
		name := p.OS + "/" + p.Architecture
		if p.Variant != "" {
			name += "/" + p.Variant
		}
		if !slices.Contains(has, name) {
			has = append(has, name)
		}
		if p.OS != osName || p.Architecture != arch {
			continue
		}
		if p.Variant == variant {
			return d, nil
		}
		if p.Variant == "" && loose == nil {
			loose = &entries[i]
		}
	}
	if loose != nil {
		return *loose, nil
	}
	want := osName + "/" + arch
	if variant != "" {
		want += " (variant " + variant + ")"
	}
	list := strings.Join(has, ", ")
	if list == "" {
		list = "no platforms"
	}
	return descriptor{}, fmt.Errorf("no %s image in the index (has: %s)", want, list)
}

func (s *session) config(ctx context.Context, what, manifestDigest string, d descriptor) (Image, error) {
	if d.Size > maxConfig {
		return Image{}, fmt.Errorf("config %s of %s: %d bytes, more than the %d bytes allowed", d.Digest, what, d.Size, maxConfig)
	}
	if !digestPattern.MatchString(d.Digest) {
		return Image{}, fmt.Errorf("config of %s: unsupported digest %q", what, d.Digest)
	}
	limit := int64(maxConfig)
	if d.Size > 0 {
		limit = d.Size
	}
	body, _, err := s.get(ctx, "/blobs/"+d.Digest, "", limit, d.Digest)
	if err != nil {
		return Image{}, fmt.Errorf("config %s of %s: %w", d.Digest, what, err)
	}
	if d.Size > 0 && int64(len(body)) != d.Size {
		return Image{}, fmt.Errorf("config %s of %s: %d bytes, the manifest says %d", d.Digest, what, len(body), d.Size)
	}
	var c imageConfig
	if err := json.Unmarshal(body, &c); err != nil {
		return Image{}, fmt.Errorf("config %s of %s: not JSON: %v", d.Digest, what, err)
	}
	platform := c.OS + "/" + c.Architecture
	if c.Variant != "" {
		platform += "/" + c.Variant
	}
	return Image{
		Entrypoint: c.Config.Entrypoint,
		Cmd:        c.Config.Cmd,
		WorkingDir: c.Config.WorkingDir,
		User:       c.Config.User,
		Digest:     manifestDigest,
		Platform:   platform,
	}, nil
}

// get fetches base+path, answering one authentication challenge, reads at
// most limit bytes of the body, and checks it against digest when one is
// given. It returns the body and its media type.
func (s *session) get(ctx context.Context, path, accept string, limit int64, digest string) ([]byte, string, error) {
	resp, err := s.do(ctx, s.base+path, accept)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode == http.StatusUnauthorized && s.auth == "" {
		challenges := parseChallenges(resp.Header.Values("Www-Authenticate"))
		drain(resp)
		if err := s.authenticate(ctx, challenges); err != nil {
			return nil, "", err
		}
		if resp, err = s.do(ctx, s.base+path, accept); err != nil {
			return nil, "", err
		}
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, "", s.statusError(resp)
	}
	if resp.ContentLength > limit {
		return nil, "", fmt.Errorf("%d bytes, more than the %d bytes allowed", resp.ContentLength, limit)
	}
	body, err := readCapped(resp.Body, limit)
	if err != nil {
		return nil, "", err
	}
	if digest != "" {
		if err := verify(body, digest); err != nil {
			return nil, "", err
		}
	}
	mediaType, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return body, strings.TrimSpace(mediaType), nil
}

func (s *session) do(ctx context.Context, u, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, oneLine(err)
	}
	return resp, nil
}

// authenticate answers a 401's challenge: a bearer token from the realm
// (with the credentials when there are some, anonymously otherwise), or
// the credentials themselves for basic.
func (s *session) authenticate(ctx context.Context, challenges []challenge) error {
	for _, c := range challenges {
		if c.scheme == "bearer" {
			return s.bearer(ctx, c.params)
		}
	}
	for _, c := range challenges {
		if c.scheme == "basic" {
			if s.creds == nil {
				return fmt.Errorf("401 unauthorized: the registry asks for a user and password (basic), and no auth file has them for %s (looked in %s)", s.ref.Registry, strings.Join(s.authFiles, ", "))
			}
			s.auth = basicAuth(s.creds)
			return nil
		}
	}
	return errors.New("401 unauthorized with no Bearer or Basic challenge")
}

// tokenResponse is the token server's answer (distribution's token spec;
// access_token is the OAuth 2 name of the same thing).
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
}

func (s *session) bearer(ctx context.Context, params map[string]string) error {
	realm := params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("401 unauthorized: bearer realm %q is not an http(s) URL", realm)
	}
	q := u.Query()
	if svc := params["service"]; svc != "" {
		q.Set("service", svc)
	}
	scope := params["scope"]
	if scope == "" {
		scope = "repository:" + s.ref.Repository + ":pull"
	}
	q.Set("scope", scope)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if s.creds != nil {
		req.Header.Set("Authorization", basicAuth(s.creds))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("token from %s: %w", u.Host, oneLine(err))
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token from %s: %w", u.Host, s.statusError(resp))
	}
	body, err := readCapped(resp.Body, maxToken)
	if err != nil {
		return fmt.Errorf("token from %s: %w", u.Host, err)
	}
	var t tokenResponse
	if err := json.Unmarshal(body, &t); err != nil {
		return fmt.Errorf("token from %s: not JSON: %v", u.Host, err)
	}
	tok := t.Token
	if tok == "" {
		tok = t.AccessToken
	}
	if tok == "" {
		return fmt.Errorf("token from %s: no token in the answer", u.Host)
	}
	s.auth = "Bearer " + tok
	return nil
}

func basicAuth(c *credentials) string {
	req := http.Request{Header: http.Header{}}
	req.SetBasicAuth(c.user, c.password)
	return req.Header.Get("Authorization")
}

// statusError describes a response that is not 200: its status and the
// registry's own error codes and messages, on one line.
func (s *session) statusError(resp *http.Response) error {
	body, _ := readCapped(resp.Body, maxErrorBody)
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
		Details string `json:"details"` // some token servers
	}
	msg := strings.ToLower(resp.Status)
	if json.Unmarshal(body, &e) == nil {
		var parts []string
		for _, x := range e.Errors {
			parts = append(parts, strings.TrimSpace(x.Code+": "+x.Message))
		}
		if e.Details != "" {
			parts = append(parts, e.Details)
		}
		if len(parts) > 0 {
			msg += " (" + strings.Join(parts, "; ") + ")"
		}
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		if s.creds != nil {
			msg += " with the credentials from " + s.creds.from
		} else {
			msg += " without credentials (none for " + s.ref.Registry + " in " + strings.Join(s.authFiles, ", ") + ")"
		}
	}
	return errors.New(sanitize(msg))
}

// verify checks body against digest (sha256 or sha512, the only ones the
// reference grammar lets through).
func verify(body []byte, digest string) error {
	algo, want, _ := strings.Cut(digest, ":")
	var h hash.Hash
	switch algo {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return fmt.Errorf("unsupported digest algorithm %q", algo)
	}
	h.Write(body)
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("content does not match its digest (got %s:%s)", algo, got)
	}
	return nil
}

func digestOf(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// readCapped reads r to the end, failing if it has more than limit bytes.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	var b bytes.Buffer
	n, err := io.Copy(&b, io.LimitReader(r, limit+1))
	if err != nil {
		return nil, oneLine(err)
	}
	if n > limit {
		return nil, fmt.Errorf("more than the %d bytes allowed", limit)
	}
	return b.Bytes(), nil
}

// drain reads a little of what is left so the connection can be reused,
// and closes the body.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
}

// oneLine keeps err's text on one line.
func oneLine(err error) error {
	if s := err.Error(); strings.ContainsAny(s, "\r\n") {
		return errors.New(sanitize(s))
	}
	return err
}

// sanitize makes a registry's text one printable line of reasonable size.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
