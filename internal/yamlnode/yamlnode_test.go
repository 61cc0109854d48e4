package yamlnode

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func parse(t testing.TB, s string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(s), &doc))
	return &doc
}

func TestCheck(t *testing.T) {
	var big strings.Builder
	for i := range MaxKeys + 1 {
		fmt.Fprintf(&big, "k%d: v\n", i)
	}
	tests := []struct{ name, yaml, want string }{
		{"no duplicate", "a: 1\nb: {a: 1, b: 2}\nc: [{a: 1}, {a: 2}]\n", ""},
		{"top level", "a: 1\nb: 2\na: 3\n", `line 3: key "a" given twice in one mapping (first at line 1)`},
		{"nested", "a:\n  b: 1\n  b: 2\n", `line 3: key "b" given twice in one mapping (first at line 2)`},
		{"in a list item", "l:\n- {x: 1}\n- {x: 1, x: 2}\n", `line 3: key "x" given twice in one mapping (first at line 3)`},
		{"quoted and plain", "a: 1\n\"a\": 2\n", `line 2: key "a" given twice`},
		{"two merges", "b: &b {x: 1}\nm:\n  <<: *b\n  <<: *b\n", `line 4: key "<<" given twice`},
		{"merge then override", "b: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n", ""},
		{"an alias is not walked twice", "b: &b {x: 1}\nc: *b\nd: *b\n", ""},
		{"a complex key", "? [a]\n: 1\n", "line 1: a mapping key must be a single value"},
		{"a mapping too large", big.String(), "line 1: a mapping of 1001 keys: at most 1000 are read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := new(Keys).Check(parse(t, tt.yaml))
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestCheckLargeMappings: the keys of large mappings are counted over all
// the documents one Keys checks.
func TestCheckLargeMappings(t *testing.T) {
	var m strings.Builder
	for i := range 500 {
		fmt.Fprintf(&m, "k%d: v\n", i)
	}
	var keys Keys
	for i := range MaxLargeKeys / 500 {
		require.NoError(t, keys.Check(parse(t, m.String())), "document %d", i)
	}
	assert.ErrorContains(t, keys.Check(parse(t, m.String())), "more than 10000 keys in mappings of over 64 keys")
	small := strings.Repeat("- {a: 1, b: 2, c: 3}\n", 10000)
	assert.NoError(t, new(Keys).Check(parse(t, small)), "small mappings are not counted")
}

func TestRead(t *testing.T) {
	data, err := Read(strings.NewReader(strings.Repeat("x", MaxBytes)))
	require.NoError(t, err)
	assert.Len(t, data, MaxBytes)
	_, err = Read(iotest.OneByteReader(strings.NewReader(strings.Repeat("x", MaxBytes+1))))
	assert.EqualError(t, err, "larger than 1 MiB: not a manifest or config file lifecycled reads")
	// An endless input is read only up to the limit.
	_, err = Read(endless{})
	assert.ErrorContains(t, err, "larger than 1 MiB")
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

// FuzzCheck: a document Check passes has no key the YAML library finds
// twice when it decodes it, however the input is repeated (copies of a
// line make duplicate keys, many copies large mappings); Check's error is
// one line naming a line.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"a: 1\n", "a: 1\na: 2\n", "- {x: 1, y: 2}\n", "k: &a {x: 1}\nm: {<<: *a, x: 2}\n", "\"1\": a\n1: b\n", "? [a]\n: 1\n", "a:\n  b: 1\n"} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(200))
	}
	f.Fuzz(func(t *testing.T, data []byte, copies uint8) {
		if len(data) > 4<<10 {
			return
		}
		in := bytes.Repeat(data, int(copies)%256+1)
		dec := yaml.NewDecoder(bytes.NewReader(in))
		var keys Keys
		for range 16 {
			var doc yaml.Node
			if dec.Decode(&doc) != nil {
				return
			}
			err := keys.Check(&doc)
			if err != nil {
				if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "line ") {
					t.Fatalf("not one line naming a line: %q", err)
				}
				return
			}
			var v any
			if err := doc.Decode(&v); err != nil && strings.Contains(err.Error(), "already defined") {
				t.Fatalf("Check passed a key the YAML library found twice: %v", err)
			}
		}
	})
}
