package registry

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseReference(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		ref, want, api string
	}{
		{"nginx", "docker.io/library/nginx:latest", "registry-1.docker.io"},
		{"nginx:1.27", "docker.io/library/nginx:1.27", "registry-1.docker.io"},
		{"bitnami/redis", "docker.io/bitnami/redis:latest", "registry-1.docker.io"},
		{"docker.io/nginx", "docker.io/library/nginx:latest", "registry-1.docker.io"},
		{"ghcr.io/org/team/app:v1.2-rc_3", "ghcr.io/org/team/app:v1.2-rc_3", "ghcr.io"},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000"},
		{"localhost/app:dev", "localhost/app:dev", "localhost"},
		{"localhost:5000/a/b", "localhost:5000/a/b:latest", "localhost:5000"},
		{"[::1]:5000/app:1", "[::1]:5000/app:1", "[::1]:5000"},
		{"registry:5000/app", "registry:5000/app:latest", "registry:5000"},
		{"app@" + digest, "docker.io/library/app@" + digest, "registry-1.docker.io"},
		{"quay.io/a/b:t@" + digest, "quay.io/a/b:t@" + digest, "quay.io"},
		{"my-org/my__app.x", "docker.io/my-org/my__app.x:latest", "registry-1.docker.io"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			r, err := ParseReference(tc.ref)
			require.NoError(t, err)
			assert.Equal(t, tc.want, r.String())
			assert.Equal(t, tc.api, r.apiHost())
		})
	}
}

func TestParseReferenceBad(t *testing.T) {
	for _, tc := range []struct{ ref, want string }{
		{"", `image reference "": empty`},
		{"Nginx", `image reference "Nginx": repository name must be lowercase`},
		{"nginx:", `image reference "nginx:": tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`},
		{"nginx:-x", `image reference "nginx:-x": tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`},
		{"nginx@sha256:abc", `image reference "nginx@sha256:abc": digest must be sha256:<64 hex digits> or sha512:<128 hex digits>`},
		{"nginx@md5:" + strings.Repeat("a", 32), `image reference "nginx@md5:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": digest must be sha256:<64 hex digits> or sha512:<128 hex digits>`},
		{"ghcr.io/", `image reference "ghcr.io/": no repository name`},
		{"ghcr.io//x", `image reference "ghcr.io//x": repository path component "" must be lowercase letters and digits separated by . _ __ or -`},
		{"a/-b", `image reference "a/-b": repository path component "-b" must be lowercase letters and digits separated by . _ __ or -`},
		{"bad_host.io:x:y/app", `image reference "bad_host.io:x:y/app": registry host "bad_host.io:x:y" is not a host name or host:port`},
		{"nginx latest", `image reference "nginx latest": contains white space`},
		{"a/" + strings.Repeat("b", 260), `name longer than 255 characters`},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := ParseReference(tc.ref)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseChallenges(t *testing.T) {
	got := parseChallenges([]string{
		`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`,
		`Basic realm=plain, Bearer realm="https://x/\"q\"", error="insufficient_scope"`,
	})
	assert.Equal(t, []challenge{
		{"bearer", map[string]string{"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull"}},
		{"basic", map[string]string{"realm": "plain"}},
		{"bearer", map[string]string{"realm": `https://x/"q"`, "error": "insufficient_scope"}},
	}, got)
}

func TestNormalizeAuthKey(t *testing.T) {
	for key, want := range map[string]string{
		"https://index.docker.io/v1/": "docker.io",
		"docker.io":                   "docker.io",
		"registry-1.docker.io":        "docker.io",
		"https://ghcr.io":             "ghcr.io",
		"http://127.0.0.1:5000/":      "127.0.0.1:5000",
		"quay.io/org/repo":            "quay.io/org/repo",
		"index.docker.io/library/x":   "docker.io/library/x",
	} {
		assert.Equal(t, want, normalizeAuthKey(key), key)
	}
}

// FuzzParseReference: parsing never panics, an accepted reference prints
// as one that parses back to itself, and the challenge parser never
// panics on what a registry may send.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"nginx", "ghcr.io/a/b:1@sha256:" + strings.Repeat("a", 64), "[::1]:5000/x", "localhost", "A/b", "a:b:c", "x@y",
		`Bearer realm="https://a/t",service="s",scope="repository:a:pull"`, `Basic realm=x, Bearer realm="\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = parseChallenges([]string{s})
		r, err := ParseReference(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		again, err := ParseReference(r.String())
		if err != nil {
			t.Fatalf("%q parsed as %q, which does not parse: %v", s, r.String(), err)
		}
		if again != r {
			t.Fatalf("%q parsed as %+v, its String %q as %+v", s, r, r.String(), again)
		}
	})
}
