package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/lifecycled/lifecycled/podspec"
	"github.com/lifecycled/lifecycled/settings"
)

// setPair sets key in mapping m (at path from the template) to v,
// replacing the pair or adding it, and records how to undo that.
func (wl *workload) setPair(m *yaml.Node, at []string, key string, v *yaml.Node) error {
	p := append(slices.Clone(at), key)
	if i := keyIndex(m, key); i >= 0 {
		text, err := wl.src.replacePair(m, i, v)
		if err != nil {
			return err
		}
		wl.rec.Edits = append(wl.rec.Edits, undo{Path: p, Text: &text})
		return nil
	}
	if err := wl.src.insertPair(m, key, v); err != nil {
		return err
	}
	wl.rec.Edits = append(wl.rec.Edits, undo{Path: p})
	return nil
}

// addItem appends item to the sequence under key in mapping m (at path
// from the template): after its last item when it is a block sequence,
// else by writing the pair anew.
func (wl *workload) addItem(m *yaml.Node, at []string, key string, item *yaml.Node) error {
	seq := podspec.MappingValue(m, key)
	if seq != nil && seq.Kind == yaml.SequenceNode && seq.Style&yaml.FlowStyle == 0 && len(seq.Content) > 0 {
		if err := wl.src.appendItem(seq, item); err != nil {
			return err
		}
		wl.rec.Edits = append(wl.rec.Edits, undo{Path: append(slices.Clone(at), key, strconv.Itoa(len(seq.Content)))})
		return nil
	}
	all := &yaml.Node{Kind: yaml.SequenceNode}
	if seq != nil && seq.Kind == yaml.SequenceNode {
		all.Content = slices.Clone(seq.Content)
	}
	all.Content = append(all.Content, item)
	return wl.setPair(m, at, key, all)
}

// annotate records the changes in the template's annotation, the last
// change, which records itself.
func (wl *workload) annotate() error {
	tmpl := wl.w.Template
	var u undo
	var do func(v *yaml.Node) error
	md := podspec.MappingValue(tmpl, "metadata")
	replaced := func(m *yaml.Node, key string, p []string) error {
		start, end, err := wl.src.pair(m, keyIndex(m, key))
		if err != nil {
			return err
		}
		text := string(wl.src.text[start:end])
		u = undo{Path: p, Text: &text}
		return nil
	}
	switch {
	case md == nil:
		u = undo{Path: []string{"metadata"}}
		do = func(v *yaml.Node) error {
			return wl.src.insertPair(tmpl, "metadata", mapping("annotations", mapping(Annotation, v)))
		}
	case isBlockMapping(md):
		an := podspec.MappingValue(md, "annotations")
		switch {
		case an == nil:
			u = undo{Path: []string{"metadata", "annotations"}}
			do = func(v *yaml.Node) error { return wl.src.insertPair(md, "annotations", mapping(Annotation, v)) }
		case isBlockMapping(an):
			u = undo{Path: []string{"metadata", "annotations", Annotation}}
			do = func(v *yaml.Node) error { return wl.src.insertPair(an, Annotation, v) }
		case an.Kind == yaml.MappingNode || an.Tag == "!!null":
			if err := replaced(md, "annotations", []string{"metadata", "annotations"}); err != nil {
				return err
			}
			do = func(v *yaml.Node) error {
				m := mapping()
				if an.Kind == yaml.MappingNode {
					m.Content = slices.Clone(an.Content)
				}
				m.Content = append(m.Content, str(Annotation), v)
				_, err := wl.src.replacePair(md, keyIndex(md, "annotations"), m)
				return err
			}
		default:
			return layoutError(an, "annotations that are not a mapping")
		}
	case md.Tag == "!!null" || md.Kind == yaml.MappingNode && len(md.Content) == 0:
		// metadata: (null) or metadata: {}, as kubectl create --dry-run
		// -o yaml writes a template's: rewritten whole.
		if err := replaced(tmpl, "metadata", []string{"metadata"}); err != nil {
			return err
		}
		do = func(v *yaml.Node) error {
			_, err := wl.src.replacePair(tmpl, keyIndex(tmpl, "metadata"), mapping("annotations", mapping(Annotation, v)))
			return err
		}
	default:
		return layoutError(md, "metadata that is not a block mapping")
	}
	wl.rec.Edits = append(wl.rec.Edits, u)
	b, err := json.Marshal(wl.rec)
	if err != nil {
		return err
	}
	return do(str(string(b)))
}

func isBlockMapping(n *yaml.Node) bool {
	return n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle == 0 && len(n.Content) > 0
}

// Uninject returns data with what Inject did undone: each injected
// workload's pairs and items put back as they were, byte for byte.
// Workloads without the annotation are left as they are.
func Uninject(data []byte) ([]byte, error) { return uninject(data, nil) }

// uninject undoes the workloads of data not in keep, by their index in
// podspec.Decode's order.
func uninject(data []byte, keep map[int]bool) ([]byte, error) {
	data, unterminated := terminate(data)
	out, err := undoAll(data, keep)
	return unterminate(out, unterminated), err
}

func undoAll(data []byte, keep map[int]bool) ([]byte, error) {
	ws, err := podspec.Decode(data)
	if err != nil {
		return nil, &DecodeError{err}
	}
	src := newSource(data)
	for i := range ws {
		w := &ws[i]
		if keep[i] || w.Template == nil {
			continue
		}
		a := injected(w.Template)
		if a == nil {
			continue
		}
		var rec record
		if err := json.Unmarshal([]byte(a.Value), &rec); err != nil || rec.V != 1 {
			return nil, fmt.Errorf("line %d: %s: annotation %s is not what inject writes: %v", a.Line, w, Annotation, err)
		}
		for _, u := range rec.Edits {
			if err := undoEdit(src, w.Template, u); err != nil {
				return nil, fmt.Errorf("%s: annotation %s: %s: %w", w, Annotation, path.Join(u.Path...), err)
			}
		}
	}
	return src.apply()
}

// undoEdit undoes one change of the record.
func undoEdit(src *source, tmpl *yaml.Node, u undo) error {
	if len(u.Path) == 0 {
		return errors.New("an empty path")
	}
	parent := tmpl
	for _, k := range u.Path[:len(u.Path)-1] {
		parent = child(parent, k)
		if parent == nil {
			return errors.New("not in the manifest any more")
		}
	}
	last := u.Path[len(u.Path)-1]
	switch parent.Kind {
	case yaml.MappingNode:
		if u.After != "" && u.Text != nil {
			if keyIndex(parent, last) >= 0 {
				return errors.New("back in the manifest: inject removed it")
			}
			return src.restoreAfter(parent, u.After, u.Skip, *u.Text)
		}
		i := keyIndex(parent, last)
		if i < 0 {
			return errors.New("not in the manifest any more")
		}
		if u.Text != nil {
			return src.restorePair(parent, i, *u.Text)
		}
		return src.deletePair(parent, i)
	case yaml.SequenceNode:
		i, err := strconv.Atoi(last)
		if err != nil || i < 0 || i >= len(parent.Content) || u.Text != nil {
			return errors.New("not in the manifest any more")
		}
		return src.deleteItem(parent, i)
	}
	return errors.New("not in the manifest any more")
}

// child is the value of key k of a mapping, or item k of a sequence.
func child(n *yaml.Node, k string) *yaml.Node {
	if n.Kind == yaml.SequenceNode {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	return podspec.MappingValue(n, k)
}

// freeName is base, or base-2, base-3... the first not in taken.
func freeName(base string, taken map[string]bool) string {
	name := base
	for n := 2; taken[name]; n++ {
		name = base + "-" + strconv.Itoa(n)
	}
	return name
}

func volumeNames(w *podspec.Workload) map[string]bool {
	out := map[string]bool{}
	for _, v := range w.Spec.Volumes {
		out[v.Name] = true
	}
	return out
}

func containerNames(w *podspec.Workload) map[string]bool {
	out := map[string]bool{}
	for _, cs := range [][]podspec.Container{w.Spec.InitContainers, w.Spec.Containers} {
		for _, c := range cs {
			out[c.Name] = true
		}
	}
	return out
}

// freeDir is Dir, or Dir-2... the first no container mounts anything at
// or under.
func freeDir(w *podspec.Workload) string {
	taken := map[string]bool{}
	for _, cs := range [][]podspec.Container{w.Spec.InitContainers, w.Spec.Containers} {
		for _, c := range cs {
			for _, m := range c.VolumeMounts {
				for p := path.Clean(m.MountPath); p != "/" && p != "."; p = path.Dir(p) {
					taken[p] = true
				}
			}
		}
	}
	return freeName(Dir, taken)
}

// usedPorts are the ports the pod's containers declare or probe: the
// containers share one network namespace, so --listen must keep off them.
func usedPorts(w *podspec.Workload, images []string) map[int]bool {
	out := map[int]bool{}
	for _, cs := range [][]podspec.Container{w.Spec.InitContainers, w.Spec.Containers} {
		for i := range cs {
			c := &cs[i]
			for _, p := range c.Ports {
				out[p.ContainerPort] = true
			}
			for _, pr := range []*settings.KubeProbe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				switch {
				case pr == nil:
				case pr.HTTPGet != nil:
					out[pr.HTTPGet.Port.Number] = true
				case pr.TCPSocket != nil:
					out[pr.TCPSocket.Port.Number] = true
				case pr.GRPC != nil:
					out[pr.GRPC.Port] = true
				}
			}
			if inv, ok := c.Lifecycled(images); ok {
				for j, a := range inv.Args {
					if (a == "--listen" || a == "--admin-listen") && j+1 < len(inv.Args) {
						if _, p, ok := splitPort(inv.Args[j+1]); ok {
							out[p] = true
						}
					}
				}
			}
		}
	}
	return out
}

func splitPort(addr string) (string, int, bool) {
	i := len(addr) - 1
	for i >= 0 && addr[i] != ':' {
		i--
	}
	if i < 0 {
		return "", 0, false
	}
	p, err := strconv.Atoi(addr[i+1:])
	return addr[:i], p, err == nil
}
