package podspec

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// defaultTerminationMessagePath is where the kubelet reads the termination
// message when the container does not say.
const defaultTerminationMessagePath = "/dev/termination-log"

// location is a directory as the pod sees it: a path inside a volume, or
// inside one container's own filesystem when volume is "".
type location struct {
	volume, dir string
	readOnly    bool
}

// shared reports whether other containers can mount the directory.
func (l location) shared() bool { return l.volume != "" }

// same reports whether both are the same directory of the same volume.
func (l location) same(o location) bool { return l.volume == o.volume && l.dir == o.dir }

func (l location) String() string {
	if !l.shared() {
		return "not on a volume"
	}
	if l.dir == "." {
		return "volume " + l.volume
	}
	return "volume " + l.volume + ", " + l.dir
}

// locate finds the volume that holds dir in c: the mount with the longest
// mountPath at or above it.
func locate(c *Container, dir string) location {
	dir = path.Clean(dir)
	best := -1
	var loc location
	for _, m := range c.VolumeMounts {
		mp := path.Clean(m.MountPath)
		if dir != mp && !strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/") {
			continue
		}
		if len(mp) <= best {
			continue
		}
		best = len(mp)
		rel := strings.TrimPrefix(strings.TrimPrefix(dir, mp), "/")
		loc = location{volume: m.Name, dir: path.Join(".", m.SubPath, rel), readOnly: m.ReadOnly}
	}
	return loc
}

// ErrNotInManifest is the error of Invocation.ReadFile for a file that no
// ConfigMap of the manifest provides: it may well exist in the container.
var ErrNotInManifest = errors.New("not in the manifest: no ConfigMap of it is mounted there")

// readFile reads the file at p in container c, as the ConfigMap volume
// mounted there would hold it.
func (w *Workload) readFile(c *Container, p string) ([]byte, error) {
	loc := locate(c, p)
	var cm *Volume
	for i := range w.Spec.Volumes {
		if v := &w.Spec.Volumes[i]; v.Name == loc.volume && v.ConfigMap != nil {
			cm = v
		}
	}
	if cm == nil {
		return nil, fmt.Errorf("%s: %w", p, ErrNotInManifest)
	}
	data, ok := w.configMaps[cm.ConfigMap.Name]
	if !ok {
		return nil, fmt.Errorf("%s: ConfigMap %s is %w", p, cm.ConfigMap.Name, ErrNotInManifest)
	}
	key := loc.dir
	if items := cm.ConfigMap.Items; len(items) > 0 {
		key = ""
		for _, it := range items {
			if path.Clean(it.Path) == loc.dir {
				key = it.Key
			}
		}
	}
	v, ok := data[key]
	if !ok || key == "" {
		return nil, fmt.Errorf("open %s: no such file: ConfigMap %s mounted there has no key for it", p, cm.ConfigMap.Name)
	}
	return []byte(v), nil
}

// checkFiles checks where lifecycled writes: the termination message where
// the kubelet reads it, the tombstone and hook log on a writable place.
func (r *Report) checkFiles(ch *Checked) {
	c, s := ch.Container, ch.Settings
	if s.Config.TerminationLog != "" {
		want := c.TerminationMessagePath
		if want == "" {
			want = defaultTerminationMessagePath
		}
		if path.Clean(s.Config.TerminationLog) != path.Clean(want) {
			r.problem(c.Name, "--termination-log %s, but the kubelet reads the termination message from terminationMessagePath %s: set one to the other",
				s.Config.TerminationLog, want)
		}
	}
	readOnlyRoot := c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem
	for _, d := range []struct{ flag, dir string }{{"--tombstone-dir", s.Config.TombstoneDir}, {"--hook-log-dir", s.Config.HookLogDir}} {
		if d.dir == "" {
			continue
		}
		switch loc := locate(c, d.dir); {
		case loc.shared() && loc.readOnly:
			r.problem(c.Name, "%s %s is on a readOnly mount of volume %s: lifecycled cannot write there", d.flag, d.dir, loc.volume)
		case !loc.shared() && readOnlyRoot:
			r.problem(c.Name, "%s %s is on the read-only root filesystem (readOnlyRootFilesystem: true): mount a volume (an emptyDir) there", d.flag, d.dir)
		}
	}
}

// checkMessageSize checks --termination-log-max against what the kubelet
// keeps of the message in this pod. Without --termination-log-tail the
// message is the reason alone, which the kubelet's cut keeps.
func (r *Report) checkMessageSize(spec *PodSpec, ch *Checked) {
	s := ch.Settings
	if s.Config.TerminationLog == "" || !s.Config.TerminationLogTail {
		return
	}
	limit := kubeletMessageLimit(spec)
	if s.Config.TerminationLogMax <= limit {
		return
	}
	n := len(spec.Containers) + len(spec.InitContainers)
	r.problem(ch.Container.Name, "--termination-log-max %d, but in a pod of %d containers and init containers the kubelet keeps only the first %d bytes of each termination message (%d / %d): the newest %d bytes of the stderr tail, where a panic ends, would be cut away; give --termination-log-max %d",
		s.Config.TerminationLogMax, n, limit, kubeletPodMessageMax, n, s.Config.TerminationLogMax-limit, limit)
}
