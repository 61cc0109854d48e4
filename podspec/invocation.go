package podspec

import (
	"path"
	"slices"
	"strings"
)

// Invocation is how a container runs lifecycled.
type Invocation struct {
	// Container is the container's name.
	Container string
	// Subcommand is "run" for the wrapper (`lifecycled [run] ...`), else
	// wait, probe, sleep, explain or version.
	Subcommand string
	// Args are lifecycled's arguments after the program name and the
	// subcommand, with $(VAR) references expanded as the kubelet does.
	Args []string
	// Env holds the container's environment variables with a literal
	// value: LIFECYCLED_* among them set flags, as in the container.
	Env map[string]string
	// Unknown names the variables whose value the manifest does not hold
	// (valueFrom).
	Unknown []string
	// ReadFile reads a file in the container (--config) from the
	// manifest's ConfigMap mounted there; the error wraps ErrNotInManifest
	// when there is none. Set by Check.
	ReadFile func(path string) ([]byte, error)
}

// Getenv looks a variable up in Env, as os.Getenv would in the container.
func (inv Invocation) Getenv(name string) string { return inv.Env[name] }

// subcommands are lifecycled's subcommands other than run.
var subcommands = []string{"wait", "probe", "sleep", "explain", "version"}

// Lifecycled reports whether c runs lifecycled, and how. A container runs
// it when command[0]'s base name is lifecycled, or when it has no command
// and its image is one of images, whose ENTRYPOINT the caller says is
// lifecycled: an image's ENTRYPOINT is not in the manifest. An entry of
// images without a tag or digest matches every tag of that repository.
func (c *Container) Lifecycled(images []string) (Invocation, bool) {
	var argv []string
	switch {
	case len(c.Command) > 0:
		if path.Base(c.Command[0]) != "lifecycled" {
			return Invocation{}, false
		}
		argv = append(slices.Clone(c.Command[1:]), c.Args...)
	case imageMatches(c.Image, images):
		argv = slices.Clone(c.Args)
	default:
		return Invocation{}, false
	}
	inv := Invocation{Container: c.Name, Subcommand: "run", Env: map[string]string{}}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			inv.Unknown = append(inv.Unknown, e.Name)
			delete(inv.Env, e.Name)
			continue
		}
		inv.Env[e.Name] = expand(e.Value, inv.Env)
	}
	for i, a := range argv {
		argv[i] = expand(a, inv.Env)
	}
	if len(argv) > 0 && (argv[0] == "run" || slices.Contains(subcommands, argv[0])) {
		inv.Subcommand, argv = argv[0], argv[1:]
	}
	inv.Args = argv
	return inv, true
}

// imageMatches reports whether image is one of refs, or of the repository
// of a ref given without tag or digest.
func imageMatches(image string, refs []string) bool {
	if image == "" {
		return false
	}
	repo := repository(image)
	for _, r := range refs {
		if r == image || (r == repository(r) && r == repo) {
			return true
		}
	}
	return false
}

// repository is an image reference without its tag and digest.
func repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// expand replaces $(NAME) with NAME's value and $$ with $, as the kubelet
// does in command, args and env values; a reference to an unknown name
// stays as written, as it does there.
func expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteByte(s[i])
				continue
			}
			name := s[i+2 : i+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
