package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const cgroupFS = "/sys/fs/cgroup"

// Down tears down the cluster recorded in the state directory, and
// whatever is left of one whose record is gone: it SIGKILLs every process
// of the cluster — those in its nodes' mount namespaces (the components,
// containerd and its shims) or network namespaces, and those in its
// cgroups (the pods' containers) — by PID until none is left, then removes
// every node's network namespace and cgroups, restores the host sysctls
// the kubelets changed (once, after the last kubelet is gone) and deletes
// the cluster's data. It is a no-op when there is no cluster. Logs stay in
// the state directory until the next Up.
func Down(ctx context.Context, cfg Config) error {
	dir := cfg.stateDir()
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	if st == nil {
		st = &state{}
	}
	if st.Holder != 0 {
		cfg.logf("cluster: tearing down (holder pid %d)", st.Holder)
	}
	var errs []error
	if err := killAll(ctx, st); err != nil {
		errs = append(errs, err)
	}
	// Killed processes stay zombies until their parent (this process, or
	// init once the process that started them has exited) reaps them:
	// wait for that, so that nothing of the cluster shows in ps after Down.
	recorded := []int{st.Holder}
	for _, r := range st.ExtraNodes {
		recorded = append(recorded, r.Holder)
	}
	for _, p := range st.Components {
		recorded = append(recorded, p.PID)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		left := false
		for _, pid := range recorded {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); pid > 0 && err == nil {
				left = true
			}
		}
		if !left {
			break
		}
	}
	// The other nodes' first: their veth pairs end in NetNS.
	for _, ns := range append(append([]string{ClientNetNS}, extraNetNSes()...), NetNS) {
		if _, err := os.Stat(NetNSPath(ns)); err == nil {
			if err := run(ctx, "ip", "netns", "delete", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := removeCgroups(); err != nil {
		errs = append(errs, err)
	}
	if st.Sysctls != nil {
		if err := restoreSysctls(st.Sysctls); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// Keep the record: the next Down tries again.
		return errors.Join(errs...)
	}
	for _, d := range []string{"data", "nodes", "state.json"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killAll SIGKILLs the cluster's processes until none is left (10 s at
// most: a process that survives SIGKILL that long is stuck in the kernel).
func killAll(ctx context.Context, st *state) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := processes(st)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("cluster processes survive SIGKILL: %v", pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Leftovers returns the PIDs of processes the cluster recorded in the
// state directory that are still running: after Down, none.
func Leftovers(cfg Config) ([]int, error) {
	st, err := loadState(cfg.stateDir())
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = &state{}
	}
	return processes(st), nil
}

// processes returns the PIDs of the cluster's processes: every process in
// its recorded mount or network namespaces (inode numbers, trusted only
// while the namespace file is still there, so that a number reused after a
// reboot or a deletion cannot match a stranger), in the client namespace,
// or in its cgroups. Zombies are left out: they are dead, and their parent
// reaps them.
func processes(st *state) []int {
	mnts, nets := map[uint64]bool{}, map[uint64]bool{}
	nodeNS := func(name string, rec *nodeRecord) {
		ino, err := inode(NetNSPath(name))
		if err != nil {
			return
		}
		nets[ino] = true
		if rec != nil && rec.NetNS == ino && rec.MountNS != 0 {
			mnts[rec.MountNS] = true
		}
	}
	nodeNS(NetNS, &st.nodeRecord)
	nodeNS(ClientNetNS, nil)
	for _, name := range extraNetNSes() {
		var rec *nodeRecord
		for i := range st.ExtraNodes {
			if NodeAt(st.ExtraNodes[i].Index).NetNS == name {
				rec = &st.ExtraNodes[i]
			}
		}
		nodeNS(name, rec)
	}
	set := map[int]bool{}
	for _, pid := range cgroupProcs() {
		set[pid] = true
	}
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if mnts[nsInode(pid, "mnt")] || nets[nsInode(pid, "net")] {
			set[pid] = true
		}
	}
	var pids []int
	for pid := range set {
		if !zombie(pid) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

func nsInode(pid int, kind string) uint64 {
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	if err != nil {
		return 0
	}
	// "mnt:[4026532301]"
	i := strings.IndexByte(link, '[')
	if i < 0 || !strings.HasSuffix(link, "]") {
		return 0
	}
	n, _ := strconv.ParseUint(link[i+1:len(link)-1], 10, 64)
	return n
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || s[i+2] == 'Z'
}

// extraNetNSes are the network namespaces of nodes 2 and up that exist,
// recorded or not.
func extraNetNSes() []string {
	var names []string
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if extraNodeName.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}

// cgroupDirs lists the cluster's cgroup directories, every node's, in
// every v1 hierarchy (and the v2 one if the kubelet used it), deepest
// first.
func cgroupDirs() []string {
	var dirs []string
	hier, _ := os.ReadDir(cgroupFS)
	for _, h := range hier {
		roots := []string{filepath.Join(cgroupFS, h.Name(), CgroupRoot)}
		entries, _ := os.ReadDir(filepath.Join(cgroupFS, h.Name()))
		for _, e := range entries {
			if e.IsDir() && extraNodeName.MatchString(e.Name()) {
				roots = append(roots, filepath.Join(cgroupFS, h.Name(), e.Name()))
			}
		}
		for _, root := range roots {
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	return dirs
}

func cgroupProcs() []int {
	var pids []int
	for _, d := range cgroupDirs() {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// makeCgroupRoot creates a node's cgroup root in every v1 hierarchy: the
// kubelet refuses a cgroup root that does not exist.
func makeCgroupRoot(root string) error {
	hier, err := os.ReadDir(cgroupFS)
	if err != nil {
		return err
	}
	for _, h := range hier {
		if h.Name() == "unified" || !h.IsDir() {
			continue
		}
		dir := filepath.Join(cgroupFS, h.Name(), root)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
		if h.Name() == "cpuset" {
			// A v1 cpuset starts empty and takes no process until it has
			// CPUs and memory nodes: those of its parent.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					return fmt.Errorf("cgroup %s: %w", f, err)
				}
			}
		}
	}
	return nil
}

// removeCgroups removes the cluster's (empty) cgroups, deepest first.
func removeCgroups() error {
	var errs []error
	for _, d := range cgroupDirs() {
		var err error
		for i := 0; i < 50; i++ { // a cgroup is briefly busy after its last process died
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// RSS returns the resident memory of the cluster's processes (components,
// containerd's shims, the pods' processes) in bytes.
func (c *Cluster) RSS() int64 {
	var total int64
	for _, pid := range processes(c.state) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total += kb * 1024
			}
		}
	}
	return total
}

// Processes returns the PIDs of the cluster's processes now.
func (c *Cluster) Processes() []int { return processes(c.state) }
