package registry

import (
	"fmt"
	"regexp"
	"strings"
)

// Docker Hub: the name short references mean, and the host its API is
// actually served from.
const (
	dockerHub    = "docker.io"
	dockerHubAPI = "registry-1.docker.io"
)

// Reference is an image reference split as docker splits it.
type Reference struct {
	// Registry is the host (and port) as written, docker.io for Docker Hub.
	Registry string
	// Repository is the path inside the registry, library/nginx for nginx.
	Repository string
	// Tag is the tag, latest when the reference has neither tag nor digest.
	Tag string
	// Digest is the manifest digest (sha256:...), empty if none was given.
	Digest string
}

// The grammar of distribution's reference package (reference/regexp.go).
var (
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	hostPart      = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$`)
	tagPattern    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestPattern = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)
)

// ParseReference parses ref as docker does: nginx is
// docker.io/library/nginx:latest, a first component with a dot or a port,
// or localhost, is a registry host, and a reference may end in :tag,
// @digest or both (the digest then wins).
func ParseReference(ref string) (Reference, error) {
	bad := func(why string) (Reference, error) {
		return Reference{}, fmt.Errorf("image reference %q: %s", ref, why)
	}
	if ref == "" {
		return bad("empty")
	}
	if strings.ContainsAny(ref, " \t\r\n") {
		return bad("contains white space")
	}
	var r Reference
	rest := ref
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		r.Digest = rest[at+1:]
		rest = rest[:at]
		if !digestPattern.MatchString(r.Digest) {
			return bad("digest must be sha256:<64 hex digits> or sha512:<128 hex digits>")
		}
	}
	// A tag follows the last colon after the last slash; a colon before
	// it is a registry port.
	if colon := strings.LastIndexByte(rest, ':'); colon > strings.LastIndexByte(rest, '/') {
		r.Tag = rest[colon+1:]
		rest = rest[:colon]
		if !tagPattern.MatchString(r.Tag) {
			return bad("tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -")
		}
	}
	name := rest
	if slash := strings.IndexByte(name, '/'); slash >= 0 {
		first := name[:slash]
		if strings.ContainsAny(first, ".:") || first == "localhost" || strings.HasPrefix(first, "[") {
			r.Registry, name = first, name[slash+1:]
			if !hostPart.MatchString(r.Registry) {
				return bad(fmt.Sprintf("registry host %q is not a host name or host:port", r.Registry))
			}
		}
	}
	if r.Registry == "" {
		r.Registry = dockerHub
	}
	if name == "" {
		return bad("no repository name")
	}
	if name != strings.ToLower(name) {
		return bad("repository name must be lowercase")
	}
	for _, c := range strings.Split(name, "/") {
		if !pathComponent.MatchString(c) {
			return bad(fmt.Sprintf("repository path component %q must be lowercase letters and digits separated by . _ __ or -", c))
		}
	}
	if r.Registry == dockerHub && !strings.Contains(name, "/") {
		name = "library/" + name
	}
	if len(r.Registry)+1+len(name) > 255 {
		return bad("name longer than 255 characters")
	}
	r.Repository = name
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// String is the reference in full: registry/repository[:tag][@digest].
func (r Reference) String() string {
	s := r.Registry + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// apiHost is the host serving the registry's API.
func (r Reference) apiHost() string {
	if r.Registry == dockerHub {
		return dockerHubAPI
	}
	return r.Registry
}

// manifestRef is what the manifests endpoint is asked for: the digest
// when there is one, since it pins the image, else the tag.
func (r Reference) manifestRef() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}
