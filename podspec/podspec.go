// Package podspec reads the pod templates of Kubernetes manifests and checks
// how the containers that run lifecycled in them will start and stop: the
// stop sequence against terminationGracePeriodSeconds as the kubelet really
// spends it (its own preStop hook first, native sidecars last), the probes
// against lifecycled's endpoints, the termination message path, and the
// tombstones that --exit-with watches. It is `lifecycled explain -f`.
//
// Only the few fields the checks need are decoded, into small structs and
// not strictly: a manifest carries many other fields, and the Kubernetes API
// types would make the binary much bigger and slower to start. What
// lifecycled does with a container's arguments is not decided here: they
// are read with the run path's own settings.Load and Settings.Validate.
package podspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lifecycled/lifecycled/internal/yamlnode"
	"github.com/lifecycled/lifecycled/settings"
)

// defaultTerminationGracePeriod is the PodSpec's default.
const defaultTerminationGracePeriod = 30 * time.Second

// Workload is one pod template found in a manifest.
type Workload struct {
	// Kind and Name are the object's, e.g. Deployment and web.
	Kind, Name string
	// Spec is the pod template's spec (the Pod's own for a Pod).
	Spec PodSpec
	// Template is the YAML mapping that holds the pod template's metadata
	// and spec (the Pod itself for a Pod), with its lines and columns:
	// what `lifecycled inject` edits.
	Template *yaml.Node

	// configMaps are the data of the manifest's ConfigMaps, by name: the
	// files of the configMap volumes.
	configMaps map[string]map[string]string
}

// String is Kind/Name, as kubectl names objects.
func (w Workload) String() string { return w.Kind + "/" + w.Name }

// PodSpec is the part of core/v1 PodSpec the checks read.
type PodSpec struct {
	TerminationGracePeriodSeconds *int64      `yaml:"terminationGracePeriodSeconds"`
	RestartPolicy                 string      `yaml:"restartPolicy"`
	HostNetwork                   bool        `yaml:"hostNetwork"`
	InitContainers                []Container `yaml:"initContainers"`
	Containers                    []Container `yaml:"containers"`
	Volumes                       []Volume    `yaml:"volumes"`
}

// TerminationGracePeriod is terminationGracePeriodSeconds, 30s when unset.
func (s *PodSpec) TerminationGracePeriod() time.Duration {
	if s.TerminationGracePeriodSeconds == nil {
		return defaultTerminationGracePeriod
	}
	return time.Duration(*s.TerminationGracePeriodSeconds) * time.Second
}

// Container is the part of core/v1 Container the checks read.
type Container struct {
	Name                   string              `yaml:"name"`
	Image                  string              `yaml:"image"`
	Command                []string            `yaml:"command"`
	Args                   []string            `yaml:"args"`
	Env                    []EnvVar            `yaml:"env"`
	EnvFrom                []yaml.Node         `yaml:"envFrom"`
	Ports                  []ContainerPort     `yaml:"ports"`
	ReadinessProbe         *settings.KubeProbe `yaml:"readinessProbe"`
	LivenessProbe          *settings.KubeProbe `yaml:"livenessProbe"`
	StartupProbe           *settings.KubeProbe `yaml:"startupProbe"`
	Lifecycle              *Lifecycle          `yaml:"lifecycle"`
	TerminationMessagePath string              `yaml:"terminationMessagePath"`
	VolumeMounts           []VolumeMount       `yaml:"volumeMounts"`
	// RestartPolicy Always on an init container makes it a native sidecar.
	RestartPolicy   string           `yaml:"restartPolicy"`
	SecurityContext *SecurityContext `yaml:"securityContext"`

	// line is where the container is written, for errors.
	line int
}

// UnmarshalYAML decodes the container and keeps its line.
func (c *Container) UnmarshalYAML(n *yaml.Node) error {
	type plain Container // without this method
	c.line = n.Line
	return n.Decode((*plain)(c))
}

// EnvVar is a container's environment variable; ValueFrom is set when the
// value comes from elsewhere (a ConfigMap, a Secret, the downward API) and
// so cannot be known from the manifest.
type EnvVar struct {
	Name      string     `yaml:"name"`
	Value     string     `yaml:"value"`
	ValueFrom *yaml.Node `yaml:"valueFrom"`
}

// ContainerPort is a declared port, which probes may name.
type ContainerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

// Lifecycle is core/v1 Lifecycle: the kubelet's own hooks, and the stop
// signal the runtime sends (Kubernetes 1.33+).
type Lifecycle struct {
	PostStart  *settings.LifecycleHandler `yaml:"postStart"`
	PreStop    *settings.LifecycleHandler `yaml:"preStop"`
	StopSignal string                     `yaml:"stopSignal"`
}

// VolumeMount is where a container sees a pod volume.
type VolumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	SubPath   string `yaml:"subPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

// Volume is a pod volume; a configMap volume's files can be read when the
// ConfigMap is in the same manifest.
type Volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name  string `yaml:"name"`
		Items []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"configMap"`
}

// SecurityContext is the part of core/v1 SecurityContext the checks read.
type SecurityContext struct {
	ReadOnlyRootFilesystem *bool `yaml:"readOnlyRootFilesystem"`
}

// object is what every manifest document has, and where each kind keeps
// its pod template. What depends on the kind stays a node until the kind
// is known: another kind (a custom resource) may give the same key a
// different shape.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	// Items are a List's objects.
	Items yaml.Node `yaml:"items"`
	// Template is a PodTemplate's.
	Template yaml.Node `yaml:"template"`
	// Data is a ConfigMap's.
	Data yaml.Node `yaml:"data"`
	Spec yaml.Node `yaml:"spec"`
}

type podTemplate struct {
	Spec PodSpec `yaml:"spec"`
}

// MaxDocuments is the most YAML documents Decode reads from one manifest:
// each costs the YAML library some microseconds and bytes even when empty
// (700,000 "---" took 8 s), a Pod a hundred.
const MaxDocuments = 1000

// Decode reads every workload of a multi-document YAML manifest: Pods, the
// pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets,
// ReplicationControllers, Jobs, CronJobs and PodTemplates, and the items of
// Lists. ConfigMaps are kept for the configMap volumes that mount them;
// other kinds (Services...) are skipped. The error of a document that is
// not YAML, or whose fields have the wrong shape, is the YAML library's,
// with its line. Decode refuses a manifest of more than
// yamlnode.MaxBytes or MaxDocuments, a key given twice in one mapping, and
// $(VAR) references that expand beyond what the container could exec (see
// checkExpansion).
func Decode(data []byte) ([]Workload, error) {
	if len(data) > yamlnode.MaxBytes {
		return nil, fmt.Errorf("larger than %d MiB", yamlnode.MaxBytes>>20)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	m := manifest{configMaps: map[string]map[string]string{}}
	var keys yamlnode.Keys
	for docs := 1; ; docs++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if docs > MaxDocuments {
			return nil, fmt.Errorf("line %d: more than %d YAML documents", doc.Line, MaxDocuments)
		}
		if err := keys.Check(&doc); err != nil {
			return nil, err
		}
		if err := m.decodeObject(&doc); err != nil {
			return nil, err
		}
	}
	for i := range m.workloads {
		m.workloads[i].configMaps = m.configMaps
	}
	return m.workloads, nil
}

// MappingValue is the value of key in the mapping m, nil when m is nil,
// not a mapping or has no such key.
func MappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// manifest is what Decode has read so far.
type manifest struct {
	workloads  []Workload
	configMaps map[string]map[string]string
	// expanded counts the bytes $(VAR) expansion made so far.
	expanded int
}

func (m *manifest) decodeObject(n *yaml.Node) error {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		if n.Kind == 0 || n.Tag == "!!null" {
			return nil // an empty document, e.g. after a trailing ---
		}
		return fmt.Errorf("line %d: a manifest document must be a mapping with apiVersion and kind", n.Line)
	}
	var o object
	if err := n.Decode(&o); err != nil {
		return err
	}
	// field decodes one of the kind's fields; a field that is not there
	// leaves into as it is.
	field := func(n *yaml.Node, into any) error {
		if n.Kind == 0 {
			return nil
		}
		return n.Decode(into)
	}
	if strings.HasSuffix(o.Kind, "List") {
		var items []yaml.Node
		if err := field(&o.Items, &items); err != nil {
			return err
		}
		for i := range items {
			if err := m.decodeObject(&items[i]); err != nil {
				return err
			}
		}
		return nil
	}
	w := Workload{Kind: o.Kind, Name: o.Metadata.Name}
	spec := func(into any) error { return field(&o.Spec, into) }
	switch o.Kind {
	case "Pod":
		if err := spec(&w.Spec); err != nil {
			return err
		}
		w.Template = n
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job":
		var s struct {
			Template podTemplate `yaml:"template"`
		}
		if err := spec(&s); err != nil {
			return err
		}
		w.Spec = s.Template.Spec
		w.Template = MappingValue(&o.Spec, "template")
	case "CronJob":
		var s struct {
			JobTemplate struct {
				Spec struct {
					Template podTemplate `yaml:"template"`
				} `yaml:"spec"`
			} `yaml:"jobTemplate"`
		}
		if err := spec(&s); err != nil {
			return err
		}
		w.Spec = s.JobTemplate.Spec.Template.Spec
		w.Template = MappingValue(MappingValue(MappingValue(&o.Spec, "jobTemplate"), "spec"), "template")
	case "PodTemplate":
		var t podTemplate
		if err := field(&o.Template, &t); err != nil {
			return err
		}
		w.Spec = t.Spec
		w.Template = &o.Template
	case "ConfigMap":
		var data map[string]string
		if err := field(&o.Data, &data); err != nil {
			return err
		}
		m.configMaps[o.Metadata.Name] = data
		return nil
	default:
		return nil
	}
	if err := m.checkExpansion(&w); err != nil {
		return err
	}
	m.workloads = append(m.workloads, w)
	return nil
}
