package cluster

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
)

// MaxNodes bounds Config.Nodes: node i's addresses are 10.201.(i-1).0/24
// and 10.202.(i-1).0/24, and each node costs ~200 MiB.
const MaxNodes = 9

// ClusterCIDR holds every node's pod CIDR, 10.202.(i-1).0/24 for node i:
// kube-proxy's clusterCIDR and the controller manager's --cluster-cidr.
const ClusterCIDR = "10.202.0.0/16"

// Node is one node of the cluster. Node 1 is where the control plane runs
// and its names are the cluster's (NodeName, NetNS, NodeIP, PodCIDR,
// CgroupRoot). Node i > 1 has a network namespace of its own, joined to
// node 1's by a veth pair (node 1 routes the node's pod CIDR to it: a
// star), its own holder mount namespace, containerd, kubelet, kube-proxy
// and cgroup root; its files are in the state directory's nodes/i/.
type Node struct {
	// Index counts from 1.
	Index int
	// Name is the Node object's name (the kubelet's --hostname-override).
	Name string
	// IP is the node's InternalIP: kubelet --node-ip, where its
	// NodePorts listen.
	IP string
	// NetNS is the network namespace (NetNSPath(NetNS)) its components,
	// its pods' sandboxes' parent and its clients run in.
	NetNS string
	// PodCIDR is the range its CNI bridge gives pods.
	PodCIDR string
	// CgroupRoot is the kubelet's cgroupRoot.
	CgroupRoot string
}

// extraNodeName matches the names of nodes 2 to MaxNodes (Name, NetNS,
// the CgroupRoot without its slash), so that Down finds their namespaces
// and cgroups without a record.
var extraNodeName = regexp.MustCompile(`^lifecycled-kube-[0-9]+$`)

// NodeAt describes node i (1 <= i <= MaxNodes).
func NodeAt(i int) Node {
	if i == 1 {
		return Node{Index: 1, Name: NodeName, IP: NodeIP, NetNS: NetNS, PodCIDR: PodCIDR, CgroupRoot: CgroupRoot}
	}
	name := NodeName + "-" + strconv.Itoa(i)
	return Node{
		Index:      i,
		Name:       name,
		IP:         fmt.Sprintf("10.201.%d.1", i-1),
		NetNS:      name,
		PodCIDR:    fmt.Sprintf("10.202.%d.0/24", i-1),
		CgroupRoot: "/" + name,
	}
}

// linkIP is node 1's end of the veth pair to node n (n > 1): node n's
// default gateway.
func (n Node) linkIP() string { return fmt.Sprintf("10.201.%d.254", n.Index-1) }

// link is the name of node 1's end of the veth pair to node n.
func (n Node) link() string { return "veth-n" + strconv.Itoa(n.Index) }

// suffix tells node n's components, certificates and files from node 1's:
// "" for node 1, "-i" for node i.
func (n Node) suffix() string {
	if n.Index == 1 {
		return ""
	}
	return "-" + strconv.Itoa(n.Index)
}

// dir is where node n's configuration and data are: the state directory
// itself for node 1 (as before there were nodes), nodes/i for node i.
func (n Node) dir(stateDir string) string {
	if n.Index == 1 {
		return stateDir
	}
	return filepath.Join(stateDir, "nodes", strconv.Itoa(n.Index))
}

// Nodes are the cluster's nodes, node 1 first.
func (c *Cluster) Nodes() []Node { return c.nodes }

// recordedNodes are the nodes a state records.
func recordedNodes(st *state) []Node {
	nodes := []Node{NodeAt(1)}
	for _, r := range st.ExtraNodes {
		nodes = append(nodes, NodeAt(r.Index))
	}
	return nodes
}
