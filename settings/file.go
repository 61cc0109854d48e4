package settings

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/lifecycled/lifecycled/internal/yamlnode"
)

// The config file (--config FILE, contract section 7) is read as a YAML
// node tree and walked against the settings' declarations: each key is a
// setting's yaml key, or a mapping holding some. Nothing is decoded into Go
// types by the YAML library, so every error is lifecycled's own, naming
// the line and the field as the user wrote it.

// node is a YAML value and the dotted key it sits at.
type node struct {
	*yaml.Node
	key string
}

func (n *node) errorf(format string, a ...any) error {
	return fmt.Errorf("line %d: %s: "+format, append([]any{n.Line, n.key}, a...)...)
}

// kind names a node's kind as a user reads it.
func (n *node) kind() string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a value"
}

// scalar returns the text of a single value.
func (n *node) scalar() (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", n.errorf("want a single value, not %s", n.kind())
	}
	return n.Value, nil
}

// set writes a single value, or a list of them, through v, as the
// environment does.
func (n *node) set(v value) error {
	if !isList(v) {
		return n.setScalar(v)
	}
	if n.Kind != yaml.SequenceNode {
		return n.errorf("want a list, not %s", n.kind())
	}
	*v.(*listValue) = nil
	for _, item := range n.Content {
		if err := (&node{resolve(item), n.key}).setScalar(v); err != nil {
			return err
		}
	}
	return nil
}

// setScalar writes the node's single value through v.
func (n *node) setScalar(v value) error {
	s, err := n.scalar()
	if err != nil {
		return err
	}
	if err := v.Set(s); err != nil {
		return n.errorf("%q: %v", s, err)
	}
	return nil
}

// integer reads a whole number as YAML writes one (5, 0x10, 1_000) within
// [lo, hi].
func (n *node) integer(lo, hi int64) (int64, error) {
	s, err := n.scalar()
	if err != nil {
		return 0, err
	}
	var i int64
	if n.Tag != "!!int" || n.Decode(&i) != nil {
		return 0, n.errorf("%q: want a whole number", s)
	}
	if i < lo || i > hi {
		return 0, n.errorf("%d: want %d to %d", i, lo, hi)
	}
	return i, nil
}

// seconds reads a Kubernetes int64 *Seconds field. The bound matters:
// 9223372036854775807 seconds would overflow into a negative duration.
func (n *node) seconds(d *time.Duration) error {
	i, err := n.secondsInt()
	if err != nil {
		return err
	}
	*d = time.Duration(i) * time.Second
	return nil
}

func (n *node) secondsInt() (int64, error) {
	return n.integer(0, math.MaxInt64/int64(time.Second))
}

// probeSeconds reads a Probe's int32 *Seconds field: 0 keeps the default,
// as in Kubernetes.
func (n *node) probeSeconds(d *time.Duration, lo int64) error {
	i, err := n.integer(math.MinInt32, math.MaxInt32)
	if err != nil || i == 0 {
		return err
	}
	if i < lo {
		return n.errorf("must be at least %d", lo)
	}
	*d = time.Duration(i) * time.Second
	return nil
}

// probeCount reads a Probe's threshold: 0 keeps the default.
func (n *node) probeCount(c *int) error {
	i, err := n.integer(math.MinInt32, math.MaxInt32)
	if err != nil || i == 0 {
		return err
	}
	if i < 1 {
		return n.errorf("must be at least 1")
	}
	*c = int(i)
	return nil
}

// fields returns the values of a mapping by key; a key not in known is an
// error naming it, as a typo in a manifest must not pass silently.
func (n *node) fields(known ...string) (map[string]*node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, n.errorf("want a mapping, not %s", n.kind())
	}
	out := map[string]*node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		key := n.key + "." + k.Value
		if !slices.Contains(known, k.Value) {
			return nil, fmt.Errorf("line %d: field %s is not a known field", k.Line, key)
		}
		if v.Tag != "!!null" {
			out[k.Value] = &node{v, key}
		}
	}
	return out, nil
}

// strings reads a list of single values.
func (n *node) strings() ([]string, error) {
	var l []string
	err := n.set((*listValue)(&l))
	return l, err
}

// ReadFile reads a YAML file lifecycled is given (--config, explain
// -f), at most yamlnode.MaxBytes of it: a file that goes on for ever
// (/dev/zero) must not take all memory.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := yamlnode.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// applyFile fills the settings not given by flag or environment from the
// YAML in data.
func applyFile(s *Settings, data []byte, given map[string]bool) error {
	if len(data) > yamlnode.MaxBytes {
		return fmt.Errorf("larger than %d MiB", yamlnode.MaxBytes>>20)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file sets nothing
		}
		return YAMLError(err, data)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		line := more.Line
		if len(more.Content) > 0 {
			line = more.Content[0].Line
		}
		return fmt.Errorf("line %d: more than one YAML document", line)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	// Two drain: mappings would be merged, and of two name: the last would
	// win, silently.
	if err := new(yamlnode.Keys).Check(&doc); err != nil {
		return err
	}
	root := resolve(doc.Content[0])
	if root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of settings (name: value), not %s", root.Line, (&node{Node: root}).kind())
	}
	w := fileWalker{keys: map[string]*setting{}, prefixes: map[string]bool{}, given: given}
	decls := s.declare()
	for i := range decls {
		for _, k := range decls[i].yaml {
			w.keys[k] = &decls[i]
			for p := k; strings.Contains(p, "."); {
				p = p[:strings.LastIndex(p, ".")]
				w.prefixes[p] = true
			}
		}
	}
	return w.walk(root, "", nil, 0)
}

type fileWalker struct {
	keys     map[string]*setting
	prefixes map[string]bool
	given    map[string]bool
}

// walk applies the mapping m found at prefix. owned are keys a handler
// decoder read already.
func (w *fileWalker) walk(m *yaml.Node, prefix string, owned []string, depth int) error {
	if depth > 8 {
		return fmt.Errorf("line %d: %s: nested too deep", m.Line, prefix)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		if k.Tag == "!!merge" { // <<: *defaults
			for _, src := range mergeSources(v) {
				if err := w.walk(src, prefix, owned, depth+1); err != nil {
					return err
				}
			}
			continue
		}
		key := k.Value
		if prefix != "" {
			key = prefix + "." + k.Value
		}
		if slices.Contains(owned, k.Value) {
			continue
		}
		d, isKey := w.keys[key]
		if !isKey && !w.prefixes[key] {
			return fmt.Errorf("line %d: field %s is not a known field", k.Line, key)
		}
		if v.Tag == "!!null" {
			continue
		}
		n := &node{v, key}
		if isKey && !w.yields(d) {
			var err error
			if d.decode != nil {
				err = d.decode(n)
			} else {
				err = n.set(d.value)
			}
			if err != nil {
				return err
			}
		}
		if w.prefixes[key] {
			if v.Kind != yaml.MappingNode {
				return n.errorf("want a mapping, not %s", n.kind())
			}
			var own []string
			if isKey {
				own = d.owns
			}
			if err := w.walk(v, key, own, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// yields reports whether the file's value gives way to a flag or variable.
func (w *fileWalker) yields(d *setting) bool {
	if d.name == "" {
		return false
	}
	if w.given[d.name] {
		return true
	}
	for _, o := range d.yields {
		if w.given[o] {
			return true
		}
	}
	return false
}

// resolve follows aliases (*name) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// mergeSources are the mappings a merge key (<<) takes fields from.
func mergeSources(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.SequenceNode {
		var out []*yaml.Node
		for _, c := range v.Content {
			if c = resolve(c); c.Kind == yaml.MappingNode {
				out = append(out, c)
			}
		}
		return out
	}
	if v.Kind == yaml.MappingNode {
		return []*yaml.Node{v}
	}
	return nil
}

// YAMLError makes a syntax error of the YAML library one line naming a
// line. The library leaves the line out for a problem on the first line,
// for a character it cannot read, and for an unknown anchor.
func YAMLError(err error, data []byte) error {
	msg := strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "yaml: ")), " ")
	if yamlLineRE().MatchString(msg) {
		return errors.New(msg)
	}
	line := 1
	if l, ok := badCharLine(data); ok {
		line = l
	} else if m := yamlAnchorRE().FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = 1 + bytes.Count(data[:i], []byte("\n"))
		}
	}
	return fmt.Errorf("line %d: %s", line, msg)
}

// Compiled on first use, by a bad config file: package initialisation is
// paid by every start of lifecycled.
var (
	yamlLineRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\bline \d+\b`) })
	yamlAnchorRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`anchor '([^']*)'`) })
)

// badCharLine returns the line of the first character YAML does not allow:
// bytes that are not UTF-8, and control characters other than tab and line
// breaks.
func badCharLine(data []byte) (int, bool) {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		bad := (r == utf8.RuneError && size == 1) ||
			(r < 0x20 && r != '\t' && r != '\n' && r != '\r') ||
			(r >= 0x7f && r < 0xa0 && r != 0x85) ||
			(r >= 0xd800 && r < 0xe000) || r == 0xfffe || r == 0xffff
		if bad {
			return line, true
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return 0, false
}
