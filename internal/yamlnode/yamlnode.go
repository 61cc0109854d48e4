// Package yamlnode reads the YAML a user hands lifecycled (a --config file,
// the manifest of `explain -f`) within bounds: at most MaxBytes of input,
// and every mapping checked for duplicate keys in one pass over the node
// tree, before anything is decoded into Go values.
//
// The YAML library finds duplicates itself when it decodes a mapping into
// a struct or a map, but by comparing every key with every later one and
// recording each equal pair: 8,000 copies of one key cost it 32 million
// error strings, 4 GB and minutes. Decoding into a yaml.Node does no such
// check, so a tree that passes CheckKeys reaches the library's check with
// no duplicate to record.
package yamlnode

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// MaxBytes is the most YAML lifecycled reads from one file: more than a
// manifest of workloads holds (the API server refuses an object over
// 1.5 MiB), and what the YAML library parses in about a second at worst:
// it spends some microseconds and a few hundred bytes on every node.
const MaxBytes = 1 << 20

// The YAML library's duplicate check compares each key of a mapping it
// decodes with every later one, so its time grows with the square of a
// mapping's size: MaxKeys bounds one mapping, MaxLargeKeys the keys of all
// the mappings of more than largeMapping keys of a file, which keeps its
// work under 10 million comparisons; small mappings, however many, cost it
// less than that in a file of MaxBytes.
const (
	MaxKeys      = 1000
	MaxLargeKeys = 10000
	largeMapping = 64
)

// Read reads all of r, and fails once it holds more than MaxBytes.
func Read(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("larger than %d MiB: not a manifest or config file lifecycled reads", MaxBytes>>20)
	}
	return data, nil
}

// Keys checks the mapping keys of the documents of one file.
type Keys struct {
	// large counts the keys of the mappings of more than largeMapping.
	large int
}

// Check walks the tree under n once and returns the first mapping key
// given twice in the same mapping, naming the key and both lines; a key
// that is not a single value, a mapping of more than MaxKeys keys, and
// more than MaxLargeKeys keys in large mappings are errors too. Aliases are
// not followed: the node they name is checked where it is written.
func (c *Keys) Check(n *yaml.Node) error {
	stack := []*yaml.Node{n}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == nil || n.Kind == yaml.AliasNode {
			continue
		}
		if n.Kind == yaml.MappingNode {
			if err := c.mapping(n); err != nil {
				return err
			}
		}
		stack = append(stack, n.Content...)
	}
	return nil
}

// mapping checks the keys of one mapping.
func (c *Keys) mapping(m *yaml.Node) error {
	seen := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: a mapping key must be a single value", k.Line)
		}
		if first, ok := seen[k.Value]; ok {
			return fmt.Errorf("line %d: key %q given twice in one mapping (first at line %d)", m.Content[i].Line, k.Value, first)
		}
		seen[k.Value] = m.Content[i].Line
	}
	n := len(seen)
	if n > MaxKeys {
		return fmt.Errorf("line %d: a mapping of %d keys: at most %d are read", m.Line, n, MaxKeys)
	}
	if n > largeMapping {
		if c.large += n; c.large > MaxLargeKeys {
			return fmt.Errorf("line %d: more than %d keys in mappings of over %d keys: more than lifecycled reads", m.Line, MaxLargeKeys, largeMapping)
		}
	}
	return nil
}
