package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Bounds on reading credentials: an auth file (or a helper's answer)
// holds a few lines per registry, and a helper answers from a local store.
const (
	maxAuthFile   = 1 << 20
	helperTimeout = 30 * time.Second
)

// credentials are a user name and password for one registry.
type credentials struct {
	user, password string
	from           string // the auth file or helper they came from, for errors
}

// authFiles lists the files credentials are read from, first match wins:
// the one given, or podman's ($REGISTRY_AUTH_FILE, then
// $XDG_RUNTIME_DIR/containers/auth.json) and then docker's
// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), which is the
// order podman itself reads them in.
func authFiles(given string) []string {
	if given != "" {
		return []string{given}
	}
	var files []string
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		files = append(files, filepath.Join(d, "config.json"))
	} else if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".docker", "config.json"))
	}
	return files
}

// authFile is the part of docker's config.json and podman's auth.json
// that says where credentials are: inline (auths), or kept by a docker
// credential helper (credHelpers per registry, else credsStore for all),
// which docker asks first.
type authFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredHelpers map[string]string `json:"credHelpers"`
	CredsStore  string            `json:"credsStore"`
}

// lookupCredentials finds the credentials for ref in files. A missing
// file is skipped; an unreadable or malformed one is an error, since
// going on without its credentials would fail later with a less clear
// 401. No entry anywhere is not an error: the registry may allow
// anonymous pulls.
func lookupCredentials(ctx context.Context, files []string, ref Reference) (*credentials, error) {
	for _, file := range files {
		c, found, err := credentialsIn(ctx, file, ref)
		if err != nil || found {
			return c, err
		}
	}
	return nil, nil
}

// credentialsIn reads file's credentials for ref; found tells whether the
// file has a say about ref's registry (a helper that has nothing for it
// ends the search, as in docker).
func credentialsIn(ctx context.Context, file string, ref Reference) (c *credentials, found bool, err error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("auth file: %w", err)
	}
	defer f.Close()
	var af authFile
	data, err := readCapped(f, maxAuthFile)
	if err == nil {
		err = json.Unmarshal(data, &af)
	}
	if err != nil {
		return nil, false, fmt.Errorf("auth file %s: %w", file, err)
	}
	for key, helper := range af.CredHelpers {
		if normalizeAuthKey(key) == ref.Registry {
			c, err := fromHelper(ctx, helper, ref)
			return c, true, err
		}
	}
	if af.CredsStore != "" {
		c, err := fromHelper(ctx, af.CredsStore, ref)
		return c, true, err
	}
	// The most specific key wins: podman allows host/namespace/repo keys.
	full := ref.Registry + "/" + ref.Repository
	best, bestLen := "", -1
	for key := range af.Auths {
		k := normalizeAuthKey(key)
		if (k == ref.Registry || k == full || strings.HasPrefix(full, k+"/")) && len(k) > bestLen {
			best, bestLen = key, len(k)
		}
	}
	if bestLen < 0 {
		return nil, false, nil
	}
	e := af.Auths[best]
	c = &credentials{user: e.Username, password: e.Password, from: file}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok {
			return nil, false, fmt.Errorf("auth file %s: entry %q: auth is not base64 of user:password", file, best)
		}
		c.user, c.password = user, pass
	}
	if c.user == "" && c.password == "" {
		if e.IdentityToken != "" {
			return nil, false, fmt.Errorf("auth file %s: entry %q: identity tokens (OAuth refresh tokens) are not supported: log in with a user and password or token", file, best)
		}
		return nil, false, nil
	}
	return c, true, nil
}

// fromHelper asks docker-credential-<helper> for ref's registry, as docker
// does: `get` with the server URL on stdin, JSON on stdout.
func fromHelper(ctx context.Context, helper string, ref Reference) (*credentials, error) {
	prog := "docker-credential-" + helper
	server := ref.Registry
	if server == dockerHub {
		server = "https://index.docker.io/v1/"
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, "get")
	cmd.Stdin = strings.NewReader(server)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &capped{&stdout, maxAuthFile}, &capped{&stderr, 4 << 10}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stdout.String() + " " + stderr.String())
		if strings.Contains(strings.ToLower(msg), "credentials not found") {
			return nil, nil
		}
		if msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return nil, fmt.Errorf("credential helper %s for %s: %s", prog, ref.Registry, sanitize(err.Error()))
	}
	var out struct{ Username, Secret string }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("credential helper %s for %s: not JSON: %v", prog, ref.Registry, err)
	}
	if out.Username == "<token>" {
		return nil, fmt.Errorf("credential helper %s for %s: identity tokens (OAuth refresh tokens) are not supported", prog, ref.Registry)
	}
	if out.Username == "" && out.Secret == "" {
		return nil, nil
	}
	return &credentials{user: out.Username, password: out.Secret, from: prog}, nil
}

// capped is a writer that keeps at most n bytes and drops the rest.
type capped struct {
	b *bytes.Buffer
	n int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.n - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// normalizeAuthKey turns a key as docker login writes it
// (https://index.docker.io/v1/, https://host/) into host[/path].
func normalizeAuthKey(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key = strings.TrimSuffix(key, "/")
	if host, path, ok := strings.Cut(key, "/"); ok && (path == "v1" || path == "v2") {
		key = host
	}
	switch key {
	case "index.docker.io", dockerHubAPI:
		return dockerHub
	}
	if h, rest, ok := strings.Cut(key, "/"); ok && (h == "index.docker.io" || h == dockerHubAPI) {
		return dockerHub + "/" + rest
	}
	return key
}

// challenge is one WWW-Authenticate challenge (RFC 7235).
type challenge struct {
	scheme string // lower case: bearer, basic
	params map[string]string
}

// parseChallenges parses the WWW-Authenticate headers of a 401, e.g.
// Bearer realm="https://auth.example/token",service="registry",scope="repository:x:pull".
func parseChallenges(headers []string) []challenge {
	var out []challenge
	for _, h := range headers {
		s := strings.TrimSpace(h)
		for s != "" {
			scheme, rest, _ := strings.Cut(s, " ")
			c := challenge{scheme: strings.ToLower(strings.TrimSpace(scheme)), params: map[string]string{}}
			s = strings.TrimSpace(rest)
			// Parameters: key=value or key="quoted", comma separated, until
			// a token that is not key=... starts the next challenge.
			for s != "" {
				eq := strings.IndexByte(s, '=')
				sp := strings.IndexAny(s, " ,")
				if eq < 0 || (sp >= 0 && sp < eq) {
					break
				}
				key := strings.ToLower(strings.TrimSpace(s[:eq]))
				s = s[eq+1:]
				var val string
				if strings.HasPrefix(s, `"`) {
					var b strings.Builder
					i := 1
					for ; i < len(s) && s[i] != '"'; i++ {
						if s[i] == '\\' && i+1 < len(s) {
							i++
						}
						b.WriteByte(s[i])
					}
					val, s = b.String(), s[min(i+1, len(s)):]
				} else {
					end := strings.IndexAny(s, ", ")
					if end < 0 {
						end = len(s)
					}
					val, s = s[:end], s[end:]
				}
				c.params[key] = val
				s = strings.TrimLeft(s, ", ")
			}
			if c.scheme != "" {
				out = append(out, c)
			}
		}
	}
	return out
}
