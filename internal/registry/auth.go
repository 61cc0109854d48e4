package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxAuthFile caps an auth file read: they hold a few lines per registry.
const maxAuthFile = 1 << 20

// credentials are a user name and password for one registry.
type credentials struct {
	user, password string
	from           string // the auth file they came from, for errors
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
// that holds static credentials. Credential helpers (credsStore,
// credHelpers) run other programs and are not followed.
type authFile struct {
	Auths map[string]struct {
		Auth     string `json:"auth"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auths"`
}

// lookupCredentials finds the credentials for ref in files. A missing
// file is skipped; an unreadable or malformed one is an error, since
// going on without its credentials would fail later with a less clear
// 401. No entry anywhere is not an error: the registry may allow
// anonymous pulls.
func lookupCredentials(files []string, ref Reference) (*credentials, error) {
	for _, file := range files {
		c, err := credentialsIn(file, ref)
		if err != nil || c != nil {
			return c, err
		}
	}
	return nil, nil
}

func credentialsIn(file string, ref Reference) (*credentials, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	defer f.Close()
	var af authFile
	data, err := readCapped(f, maxAuthFile)
	if err == nil {
		err = json.Unmarshal(data, &af)
	}
	if err != nil {
		return nil, fmt.Errorf("auth file %s: %w", file, err)
	}
	// The most specific key wins: podman allows host/namespace/repo keys.
	best, bestLen := "", -1
	for key := range af.Auths {
		k := normalizeAuthKey(key)
		full := ref.Registry + "/" + ref.Repository
		if k == ref.Registry || strings.HasPrefix(full, k+"/") || k == full {
			if len(k) > bestLen {
				best, bestLen = key, len(k)
			}
		}
	}
	if bestLen < 0 {
		return nil, nil
	}
	e := af.Auths[best]
	c := &credentials{user: e.Username, password: e.Password, from: file}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok {
			return nil, fmt.Errorf("auth file %s: entry %q: auth is not base64 of user:password", file, best)
		}
		c.user, c.password = user, pass
	}
	if c.user == "" && c.password == "" {
		return nil, nil
	}
	return c, nil
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
