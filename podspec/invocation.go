package podspec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/lifecycled/lifecycled/settings"
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

// Environ lists the names of the container's variables as KEY=VALUE, those
// of Env and Unknown (with no value), in order.
func (inv Invocation) Environ() []string {
	env := make([]string, 0, len(inv.Env)+len(inv.Unknown))
	for k, v := range inv.Env {
		env = append(env, k+"="+v)
	}
	for _, k := range inv.Unknown {
		env = append(env, k+"=")
	}
	slices.Sort(env)
	return env
}

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
	inv := Invocation{Container: c.Name, Subcommand: "run"}
	// Decode refused what does not expand within maxArg.
	inv.Env, inv.Unknown, _ = c.expansion(argv)
	if len(argv) > 0 && settings.Subcommand(argv[0]) != "" {
		inv.Subcommand, argv = settings.Subcommand(argv[0]), argv[1:]
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

// maxArg is the longest argument or environment string Linux execs
// (MAX_ARG_STRLEN, 32 pages of 4 KiB): the container of a longer one
// fails to start with E2BIG. Expansion stops there, so that $(VAR)
// references that double at each step (B=$(A)$(A), C=$(B)$(B)...) cannot
// grow without bound.
const maxArg = 128 << 10

// maxExpanded bounds the bytes $(VAR) expansion makes in a whole manifest.
const maxExpanded = 16 << 20

// expansion expands c's env values, each with the variables before it, and
// then argv in place, as the kubelet does. It returns the variables with a
// literal value, and the names of those with valueFrom; the error names
// the first string that would be longer than maxArg.
func (c *Container) expansion(argv []string) (env map[string]string, unknown []string, err error) {
	env = map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			unknown = append(unknown, e.Name)
			delete(env, e.Name)
			continue
		}
		v, ok := expand(e.Value, env)
		if !ok && err == nil {
			err = fmt.Errorf("env %s: longer than %d KiB after $(VAR) expansion: the container could not start (exec fails with E2BIG)", e.Name, maxArg>>10)
		}
		env[e.Name] = v
	}
	for i, a := range argv {
		v, ok := expand(a, env)
		if !ok && err == nil {
			err = fmt.Errorf("command/args item %d: longer than %d KiB after $(VAR) expansion: the container could not start (exec fails with E2BIG)", i+1, maxArg>>10)
		}
		argv[i] = v
	}
	return env, unknown, err
}

// checkExpansion expands the env and arguments of w's containers and
// refuses a string longer than maxArg, or more than maxExpanded bytes in
// the whole manifest.
func (m *manifest) checkExpansion(w *Workload) error {
	for _, cs := range [][]Container{w.Spec.InitContainers, w.Spec.Containers} {
		for i := range cs {
			c := &cs[i]
			argv := append(slices.Clone(c.Command), c.Args...)
			env, _, err := c.expansion(argv)
			if err != nil {
				return fmt.Errorf("line %d: %s container %s: %w", c.line, w, c.Name, err)
			}
			for _, v := range env {
				m.expanded += len(v)
			}
			for _, a := range argv {
				m.expanded += len(a)
			}
			if m.expanded > maxExpanded {
				return fmt.Errorf("line %d: %s container %s: the manifest's env and arguments expand to more than %d MiB in all ($(VAR) references)", c.line, w, c.Name, maxExpanded>>20)
			}
		}
	}
	return nil
}

// expand replaces $(NAME) with NAME's value and $$ with $, as the kubelet
// does in command, args and env values; a reference to an unknown name
// stays as written, as it does there. It stops, reporting false, before
// the result grows beyond maxArg.
func expand(s string, env map[string]string) (string, bool) {
	if !strings.Contains(s, "$") {
		return s, len(s) <= maxArg
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
				if b.Len()+len(v) > maxArg {
					return b.String(), false
				}
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), b.Len() <= maxArg
}
