package inject

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// source is a manifest's text, edited in place: every change is a
// replacement of a byte range found from the YAML nodes' lines and
// columns, so that what inject does not change stays byte for byte as it
// was, comments, quoting and indentation included. Only block-style
// mappings and sequences are edited in place; a flow-style one ({...},
// [...], JSON) is replaced as a whole where it is a value, refused where
// it holds what must change.
type source struct {
	text  []byte
	lines []int // offset of the start of each line; lines[0] is line 1
	edits []edit
	// compact writes a sequence at its key's indentation, as kubectl
	// does, for a document written so.
	compact bool
}

// edit replaces text[start:end] with repl.
type edit struct {
	start, end int
	repl       string
	seq        int
}

func newSource(text []byte) *source {
	s := &source{text: text, lines: []int{0}}
	for i, b := range text {
		if b == '\n' && i+1 < len(text) {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// line is the text of line n (1-based) without its newline.
func (s *source) line(n int) string {
	if n < 1 || n > len(s.lines) {
		return ""
	}
	end := len(s.text)
	if n < len(s.lines) {
		end = s.lines[n]
	}
	return strings.TrimRight(string(s.text[s.lines[n-1]:end]), "\r\n")
}

// lineStart is the offset of line n's start; past the last line, the end.
func (s *source) lineStart(n int) int {
	if n > len(s.lines) {
		return len(s.text)
	}
	return s.lines[n-1]
}

// offset is the offset of a node's line and column. yaml.v3 counts
// columns in characters; what precedes a key or an item on its line is
// indentation and "- ", so characters are bytes there.
func (s *source) offset(n *yaml.Node) (int, error) {
	if n.Line < 1 || n.Line > len(s.lines) {
		return 0, fmt.Errorf("line %d: outside the text", n.Line)
	}
	prefix := s.line(n.Line)
	if n.Column-1 > len(prefix) || strings.Trim(prefix[:n.Column-1], " -") != "" {
		return 0, layoutError(n, "something other than indentation before it on its line")
	}
	return s.lines[n.Line-1] + n.Column - 1, nil
}

func layoutError(n *yaml.Node, why string) error {
	return fmt.Errorf("line %d: inject edits block-style YAML in place and cannot edit here (%s): write this part in block style (kubectl get -o yaml, yq -P)", n.Line, why)
}

// extentEnd is the line after the last line of what starts at line
// first, column col: the lines after it that are indented deeper than
// col, or, with zeroSeq, at col and starting with "- " (a sequence written
// at its key's indentation, as kubectl does). Comments and blank lines in
// between belong to it; blank lines and comments no deeper than col at its
// end belong to what follows.
func (s *source) extentEnd(first, col int, zeroSeq bool) int {
	last := first
	for n := first + 1; n <= len(s.lines); n++ {
		l := s.line(n)
		t := strings.TrimLeft(l, " ")
		ind := len(l) - len(t)
		switch {
		case t == "":
		case t[0] == '#':
			if ind > col-1 {
				last = n
			}
		case ind > col-1 || (zeroSeq && ind == col-1 && (t == "-" || strings.HasPrefix(t, "- "))):
			last = n
		default:
			return last + 1
		}
	}
	return last + 1
}

// pair is the byte range of the key/value pair i (the key's index in
// m.Content) of a block mapping: from its key to the end of its value's
// last line.
func (s *source) pair(m *yaml.Node, i int) (start, end int, err error) {
	k, v := m.Content[i], m.Content[i+1]
	if k.Kind != yaml.ScalarNode {
		return 0, 0, layoutError(k, "a key that is not a plain value")
	}
	start, err = s.offset(k)
	if err != nil {
		return 0, 0, err
	}
	zeroSeq := v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle == 0 && v.Line > k.Line
	return start, s.lineStart(s.extentEnd(k.Line, k.Column, zeroSeq)), nil
}

// item is the byte range of the item i of a block sequence, from the
// line of its dash, and the dash's column.
func (s *source) item(seq *yaml.Node, i int) (start, end, dash int, err error) {
	it := seq.Content[i]
	l := s.line(it.Line)
	if it.Column-1 > len(l) {
		return 0, 0, 0, layoutError(it, "an item off its line")
	}
	before := strings.TrimRight(l[:it.Column-1], " ")
	if strings.TrimLeft(before, " ") != "-" {
		return 0, 0, 0, layoutError(it, "a sequence item not on its dash's line")
	}
	dash = len(before)
	return s.lineStart(it.Line), s.lineStart(s.extentEnd(it.Line, dash, false)), dash, nil
}

func (s *source) add(start, end int, repl string) {
	s.edits = append(s.edits, edit{start: start, end: end, repl: repl, seq: len(s.edits)})
}

// replacePair replaces the pair of key index i in block mapping m with
// key: v, and returns the text it replaced.
func (s *source) replacePair(m *yaml.Node, i int, v *yaml.Node) (string, error) {
	start, end, err := s.pair(m, i)
	if err != nil {
		return "", err
	}
	k := m.Content[i]
	text, err := encodePair(k.Value, v, k.Column-1, s.compact)
	if err != nil {
		return "", err
	}
	s.add(start, end, text)
	return string(s.text[start:end]), nil
}

// restorePair puts back the text replacePair returned.
func (s *source) restorePair(m *yaml.Node, i int, text string) error {
	start, end, err := s.pair(m, i)
	if err != nil {
		return err
	}
	s.add(start, end, text)
	return nil
}

// insertPair adds key: v after the last pair of block mapping m.
func (s *source) insertPair(m *yaml.Node, key string, v *yaml.Node) error {
	if m.Kind != yaml.MappingNode || m.Style&yaml.FlowStyle != 0 || len(m.Content) == 0 {
		return layoutError(m, "a flow-style or empty mapping")
	}
	last := len(m.Content) - 2
	_, end, err := s.pair(m, last)
	if err != nil {
		return err
	}
	col := m.Content[last].Column
	text, err := encodePair(key, v, col-1, s.compact)
	if err != nil {
		return err
	}
	s.add(end, end, ensureNewline(s.text[:end])+strings.Repeat(" ", col-1)+text)
	return nil
}

// deletePair removes the pair of key index i, which insertPair added.
func (s *source) deletePair(m *yaml.Node, i int) error {
	start, end, err := s.pair(m, i)
	if err != nil {
		return err
	}
	ls := s.lineStart(m.Content[i].Line)
	if strings.TrimSpace(string(s.text[ls:start])) != "" {
		return layoutError(m.Content[i], "not the first thing on its line")
	}
	s.add(ls, end, "")
	return nil
}

// cutPair removes pair i of block mapping m, with its lines, and returns
// them and how many lines (comments, blank) stand between the pair before
// it and it: restoreAfter puts them back there.
func (s *source) cutPair(m *yaml.Node, i int) (text string, skip int, err error) {
	if i < 2 {
		return "", 0, layoutError(m.Content[i], "the first key of its mapping")
	}
	start, end, err := s.pair(m, i)
	if err != nil {
		return "", 0, err
	}
	k := m.Content[i]
	ls := s.lineStart(k.Line)
	if strings.TrimSpace(string(s.text[ls:start])) != "" {
		return "", 0, layoutError(k, "not the first thing on its line")
	}
	_, prevEnd, err := s.pair(m, i-2)
	if err != nil {
		return "", 0, err
	}
	s.add(ls, end, "")
	return string(s.text[ls:end]), k.Line - s.lineAt(prevEnd), nil
}

// restoreAfter puts back the lines cutPair removed, skip lines after the
// end of the pair of key after in m.
func (s *source) restoreAfter(m *yaml.Node, after string, skip int, text string) error {
	i := keyIndex(m, after)
	if i < 0 {
		return fmt.Errorf("key %s not in the manifest any more", after)
	}
	_, end, err := s.pair(m, i)
	if err != nil {
		return err
	}
	at := s.lineStart(s.lineAt(end) + skip)
	s.add(at, at, text)
	return nil
}

// lineAt is the line that starts at offset off, one past the last line
// at the end of the text.
func (s *source) lineAt(off int) int {
	n := sort.SearchInts(s.lines, off)
	if n < len(s.lines) && s.lines[n] == off {
		return n + 1
	}
	return len(s.lines) + 1
}

// appendItem adds v at the end of block sequence seq.
func (s *source) appendItem(seq *yaml.Node, v *yaml.Node) error {
	if seq.Kind != yaml.SequenceNode || seq.Style&yaml.FlowStyle != 0 || len(seq.Content) == 0 {
		return layoutError(seq, "a flow-style or empty sequence")
	}
	_, end, dash, err := s.item(seq, len(seq.Content)-1)
	if err != nil {
		return err
	}
	text, err := encode(v, dash+1, s.compact)
	if err != nil {
		return err
	}
	s.add(end, end, ensureNewline(s.text[:end])+strings.Repeat(" ", dash-1)+"- "+text)
	return nil
}

// deleteItem removes item i of block sequence seq, which appendItem added.
func (s *source) deleteItem(seq *yaml.Node, i int) error {
	start, end, _, err := s.item(seq, i)
	if err != nil {
		return err
	}
	s.add(start, end, "")
	return nil
}

// ensureNewline is "\n" when before does not end a line (a file whose
// last line has no newline), else "".
func ensureNewline(before []byte) string {
	if len(before) > 0 && before[len(before)-1] != '\n' {
		return "\n"
	}
	return ""
}

// apply returns the text with every edit made. Edits must not overlap;
// insertions at one offset keep the order they were added in.
func (s *source) apply() ([]byte, error) {
	es := append([]edit(nil), s.edits...)
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].start != es[j].start {
			return es[i].start < es[j].start
		}
		// At one offset, what is inserted comes before what is replaced.
		if zi, zj := es[i].end == es[i].start, es[j].end == es[j].start; zi != zj {
			return zi
		}
		return es[i].seq < es[j].seq
	})
	var b bytes.Buffer
	at := 0
	for _, e := range es {
		if e.start < at {
			return nil, fmt.Errorf("overlapping edits at byte %d", e.start)
		}
		b.Write(s.text[at:e.start])
		b.WriteString(e.repl)
		at = e.end
	}
	b.Write(s.text[at:])
	return b.Bytes(), nil
}

// encodePair is key: v as block YAML whose lines after the first are
// indented by indent, ending with a newline.
func encodePair(key string, v *yaml.Node, indent int, compact bool) (string, error) {
	m := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{str(key), v}}
	return encode(m, indent, compact)
}

// encode is v as block YAML whose lines after the first are indented by
// indent, ending with a newline.
func encode(v *yaml.Node, indent int, compact bool) (string, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	out := strings.TrimSuffix(b.String(), "\n")
	if compact {
		out = compactSequences(out)
	}
	pad := "\n" + strings.Repeat(" ", indent)
	return strings.ReplaceAll(out, "\n", pad) + "\n", nil
}

// compactSequences moves each sequence the YAML encoder wrote two spaces
// under its key ("key:\n  - a") to the key's indentation ("key:\n- a"),
// with everything under it; block scalars' lines are content, not keys.
func compactSequences(text string) string {
	lines := strings.Split(text, "\n")
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	for i := 1; i < len(lines); i++ {
		prev, l := lines[i-1], lines[i]
		t := strings.TrimLeft(l, " ")
		if isBlockScalarStart(prev) {
			// Skip the scalar's lines: deeper than the line that opens it.
			for n := indent(prev); i < len(lines) && (strings.TrimSpace(lines[i]) == "" || indent(lines[i]) > n); i++ {
			}
			i--
			continue
		}
		if !(t == "-" || strings.HasPrefix(t, "- ")) || !strings.HasSuffix(prev, ":") || indent(l) != indent(prev)+2 {
			continue
		}
		n := indent(l)
		for j := i; j < len(lines) && (strings.TrimSpace(lines[j]) == "" || indent(lines[j]) >= n); j++ {
			if len(lines[j]) >= 2 {
				lines[j] = lines[j][2:]
			}
		}
	}
	return strings.Join(lines, "\n")
}

// isBlockScalarStart reports whether line ends with a block scalar's
// indicator (| or >, with chomping and indentation), after a key or a dash.
func isBlockScalarStart(line string) bool {
	t := strings.TrimRight(line, " ")
	i := strings.LastIndexAny(t, " ")
	ind := t[i+1:]
	if ind == "" || (ind[0] != '|' && ind[0] != '>') || strings.Trim(ind[1:], "+-0123456789") != "" {
		return false
	}
	before := strings.TrimSpace(t[:i+1])
	return strings.HasSuffix(before, ":") || before == "-" || strings.HasSuffix(before, " -")
}

// str is a plain string node.
func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// mapping is a block mapping of key, value, key, value...
func mapping(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Content = append(m.Content, str(kv[i].(string)), node(kv[i+1]))
	}
	return m
}

// node makes a node of a string, int, bool, []string or *yaml.Node.
func node(v any) *yaml.Node {
	switch v := v.(type) {
	case *yaml.Node:
		return v
	case string:
		return str(v)
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(v)}
	case int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(v)}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(v)}
	case []string:
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, s := range v {
			seq.Content = append(seq.Content, str(s))
		}
		return seq
	}
	panic(fmt.Sprintf("inject: node of %T", v))
}

// keyIndex is the index in m.Content of key, -1 when m has none.
func keyIndex(m *yaml.Node, key string) int {
	if m == nil || m.Kind != yaml.MappingNode {
		return -1
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return i
		}
	}
	return -1
}
