package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

const stateVersion = 1

// state is the record Down works from: written before each thing it
// records is created, so that a run killed at any point leaves enough
// behind for the next Down.
type state struct {
	Version int `json:"version"`
	// Sysctls are the host's values before the kubelet wrote its own.
	Sysctls map[string]string `json:"sysctls"`
	// nodeRecord is node 1's holder and namespaces (its fields are the
	// record's own in JSON, as they were before there were nodes).
	nodeRecord
	// Components are the processes Up started, every node's (node i's
	// named NAME-i).
	Components []component `json:"components,omitempty"`
	// ExtraNodes are nodes 2 and up (Config.Nodes), each with the holder
	// and namespaces of its own, recorded like node 1's above.
	ExtraNodes []nodeRecord `json:"extraNodes,omitempty"`
}

// nodeRecord is what Down needs of a node. Holder is the PID of the
// process holding the node's mount namespace; MountNS and NetNS the inodes
// of its namespaces (as in /proc/PID/ns/{mnt,net}), by which Down finds
// every process of the node, including containerd's shims.
type nodeRecord struct {
	Index   int    `json:"index,omitempty"`
	Holder  int    `json:"holder,omitempty"`
	MountNS uint64 `json:"mountNS,omitempty"`
	NetNS   uint64 `json:"netNS,omitempty"`
}

// record is node n's entry, nil if there is none.
func (st *state) record(n Node) *nodeRecord {
	if n.Index == 1 {
		return &st.nodeRecord
	}
	for i := range st.ExtraNodes {
		if st.ExtraNodes[i].Index == n.Index {
			return &st.ExtraNodes[i]
		}
	}
	return nil
}

type component struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

func (c *Cluster) save() error {
	b, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return err
	}
	p := statePath(c.cfg.stateDir())
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write cluster state: %w", err)
	}
	return os.Rename(tmp, p)
}

// loadState reads the record; nil without error when there is none.
func loadState(dir string) (*state, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cluster state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read cluster state %s: %w", statePath(dir), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("cluster state %s: version %d, want %d", statePath(dir), st.Version, stateVersion)
	}
	return &st, nil
}
